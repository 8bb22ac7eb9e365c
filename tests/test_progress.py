"""Progress of eval and calibration: a live bar on a terminal, a few plain lines in a pipe or log."""
import io

from edge_edet.contract.progress import PlainProgress, progress_bar


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_piped_progress_is_a_few_plain_lines():
    stream = io.StringIO()
    bar = progress_bar(450, "eval", "img", stream=stream, every_s=0.0)
    assert isinstance(bar, PlainProgress)
    with bar:
        for _ in range(3):
            bar.update(150)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split(" img")[0] for line in lines] == ["eval: 150/450", "eval: 300/450", "eval: 450/450"]
    assert "(100%)" in lines[-1] and "img/s" in lines[-1] and "left" not in lines[-1]
    assert lines[0].endswith(" left")


def test_piped_progress_waits_between_lines_and_always_ends_with_one():
    stream = io.StringIO()
    with progress_bar(500, "calibrating (percentile)", stream=stream, every_s=3600) as bar:
        for _ in range(500):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calibrating (percentile): 500/500 img (100%)")


def test_a_terminal_gets_the_live_bar_and_disabled_progress_prints_nothing():
    bar = progress_bar(10, "eval", stream=Tty())
    assert type(bar).__name__ == "tqdm"
    bar.close()
    quiet = io.StringIO()
    with progress_bar(10, "eval", stream=quiet, enabled=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""
