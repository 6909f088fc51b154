"""Fooling images: MAP-Elites over classes, direct and CPPN encodings, gradient ascent, transfer.

The method of Nguyen, Yosinski and Clune (2015), "Deep Neural Networks are Easily Fooled",
as docs/method.md ("Fooling images") describes it.
Everything works on whole batches, every stochastic routine takes a ``seed``, and a run saves
to and resumes from one checksummed file.
"""

from __future__ import annotations

from evofool.evolution._archive import INSERTION_RULES, ClassArchive
from evofool.evolution._ascent import AscentResult, gradient_ascent
from evofool.evolution._cppn import CPPNEncoding
from evofool.evolution._cppn_genome import CPPNGenome, activate, cppn_inputs
from evofool.evolution._cppn_graphs import ACTIVATIONS, INPUTS
from evofool.evolution._cppn_render import render_cppns
from evofool.evolution._direct import DirectEncoding
from evofool.evolution._encoding import ENCODING_CLASSES, Encoding, encoding_from_spec
from evofool.evolution._map_elites import MapElites, Scorer, softmax_scorer
from evofool.evolution._operators import hsv_to_rgb, polynomial_mutation, quantize, quantize_
from evofool.evolution._random import Rngs, spawn_seeds
from evofool.evolution._transfer import class_confidence, transfer_confidence

__all__ = [
    "ACTIVATIONS",
    "INPUTS",
    "INSERTION_RULES",
    "AscentResult",
    "ENCODING_CLASSES",
    "CPPNEncoding",
    "CPPNGenome",
    "ClassArchive",
    "DirectEncoding",
    "Encoding",
    "MapElites",
    "Rngs",
    "Scorer",
    "activate",
    "class_confidence",
    "cppn_inputs",
    "encoding_from_spec",
    "gradient_ascent",
    "hsv_to_rgb",
    "polynomial_mutation",
    "quantize",
    "quantize_",
    "render_cppns",
    "softmax_scorer",
    "spawn_seeds",
    "transfer_confidence",
]
