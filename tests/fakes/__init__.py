"""Stand-ins shared by the tests and the benchmarks, so that nothing needs a device, a display or
real models: ``cameras`` (cv2.VideoCapture look-alikes), ``windows`` (sinks.Window look-alikes),
``onnx_models`` (tiny ONNX models with known effects), ``modules`` (pyvirtualcam and
stylecam.classify stand-ins), ``media`` (frames and clips made on the fly), ``engine`` (the engine
over the fake models, and a Stylizer that fails when told to) and ``training`` (tiny style-training
runs).
"""
