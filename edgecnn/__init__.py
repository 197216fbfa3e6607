"""edgecnn: train small CNNs, quantise them to int8 and run them on arm64 boards with a camera.

The package is split in two sides. The workstation side (``architectures``, ``train``,
``quantize``) imports TensorFlow. The board side (``runtime``, ``postprocess``, ``sources``,
``sinks``, ``daemon``) never does; ``tests/test_layering.py`` enforces it.
"""

__version__ = "0.1.0"
