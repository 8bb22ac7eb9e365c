#!/usr/bin/env bash
# Everything the test suite needs, the same steps for a newcomer (README's test command) and CI (.ci/run):
#   * torch 2.13.0 first: a bare torch requirement on a machine without torch pulls GBs of CUDA packages;
#   * the [test] extra (export, eval, train, serve, OpenVINO, checkers);
#   * nvidia-pytriton and trackers without their dependencies: PyTriton pins numpy<2 (it runs on numpy 2,
#     see edge_edet/serve/pytriton_compat.py) and trackers pulls the GUI opencv-python over the headless one;
#   * Debian's GStreamer OpenCV and plugins for the software twin of the hardware decode pipeline
#     (tests/test_gst_twin.py, run under /usr/bin/python3); where there is no apt-get the twin test says why
#     it skips (under CI=true it fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[test]"
python3 -m pip install -q --no-deps nvidia-pytriton==0.7.0 trackers==2.6.1
GST_PACKAGES="python3-opencv gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_deps: no apt-get here; the GStreamer twin test will skip (it needs: $GST_PACKAGES)" >&2
elif ! dpkg -s $GST_PACKAGES >/dev/null 2>&1; then
    as_root=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && as_root="sudo"
    log="${TMPDIR:-/tmp}/edge_edet_apt.log"
    if ! ($as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq \
            --no-install-recommends $GST_PACKAGES) >"$log" 2>&1; then
        echo "install_test_deps: apt-get install $GST_PACKAGES failed (log: $log):" >&2
        tail -20 "$log" >&2
    fi
fi
