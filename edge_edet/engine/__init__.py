"""TensorRT engine building for TensorRT 8.5, 10.x and 11.x (see builder.py; calls listed below)."""
