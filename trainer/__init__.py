"""stylecam trainer (PyTorch): style networks, Gatys baseline, classifiers, ONNX export."""
