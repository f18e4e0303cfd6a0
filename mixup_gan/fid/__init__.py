"""FID/KID/precision-recall/IS evaluation on torch-fidelity (see evaluator.py, inception.py)."""

from .evaluator import FIDEvaluator, evaluate, frechet_distance, statistics
from .inception import FIDError, InceptionWeights, resolve_inception_weights
from .inputs import ImagesInput, folder_input, resolve_input, tensor_input
from .pixels import PixelPool

__all__ = ["FIDError", "FIDEvaluator", "ImagesInput", "InceptionWeights", "PixelPool", "evaluate",
           "folder_input", "frechet_distance", "resolve_inception_weights", "resolve_input",
           "statistics", "tensor_input"]
