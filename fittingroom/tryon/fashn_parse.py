"""Our own person / garment parse in FASHN's label space, for the FASHN VTON v1.5 adapter.

FASHN VTON's pipeline builds its clothing-agnostic person image and its garment image from a
human parse (18 labels of ``fashn-human-parser``, whose weights are licensed for
NON-COMMERCIAL use only). With ``TRYON_FASHN_PARSER=own`` the adapter never loads that parser:
:class:`OwnParser` stands in for it and answers each ``predict`` with a label map made here from
this project's person analysis (``person.py``: agnostic mask, head and hands) and garment mask
(``garment.py`` / ``onmodel.py``).

Label maps are uint8 (H, W) in FASHN's ids (:data:`FASHN_LABELS`, as in ``fashn_human_parser``'s
``IDS_TO_LABELS``): the pipeline masks the category's garment labels (plus arms / torso / legs,
which our maps never use) and preserves its identity labels, hands and feet.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from fittingroom.tryon.person import PersonPrep, TryOnCategory

#: FASHN human-parser label ids (the ``fashn_human_parser`` package's ``LABELS_TO_IDS``).
FASHN_LABELS: dict[str, int] = {
    "background": 0,
    "face": 1,
    "hair": 2,
    "top": 3,
    "dress": 4,
    "skirt": 5,
    "pants": 6,
    "belt": 7,
    "bag": 8,
    "hat": 9,
    "scarf": 10,
    "glasses": 11,
    "arms": 12,
    "hands": 13,
    "legs": 14,
    "feet": 15,
    "torso": 16,
    "jewelry": 17,
}

#: The garment label our maps give the replaced region, per category (one of the labels FASHN masks
#: for that category's body coverage: upper = top/dress/scarf, lower = skirt/pants/belt, full = all).
GARMENT_LABEL: dict[TryOnCategory, str] = {
    TryOnCategory.top: "top",
    TryOnCategory.bottom: "pants",
    TryOnCategory.one_piece: "dress",
}

#: The label of the person's pixels that stay (the other garment, uncovered limbs): one FASHN
#: preserves for that coverage (legs for upper, arms for lower, feet for full), so its mask
#: dilation does not grow into them.
KEPT_LABEL: dict[TryOnCategory, str] = {
    TryOnCategory.top: "legs",
    TryOnCategory.bottom: "arms",
    TryOnCategory.one_piece: "feet",
}


def person_label_map(person: PersonPrep, category: TryOnCategory) -> np.ndarray:
    """FASHN-label map of a prepared person, uint8 (H, W) in ``person.image``'s grid.

    background 0; the person's other pixels :data:`KEPT_LABEL`; our agnostic mask (the region the new
    garment replaces, arms included for tops and one-pieces) :data:`GARMENT_LABEL`; the face box
    ``face`` and the rest of the keep mask (head, hands) ``hands``: never repainted.
    """
    out = np.zeros(person.person_mask.shape, np.uint8)
    out[person.person_mask] = FASHN_LABELS[KEPT_LABEL[category]]
    out[person.agnostic_mask] = FASHN_LABELS[GARMENT_LABEL[category]]
    out[person.keep_mask] = FASHN_LABELS["hands"]
    x0, y0, x1, y1 = person.face_box
    face = np.zeros_like(person.keep_mask)
    face[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    out[face & (person.keep_mask | person.person_mask)] = FASHN_LABELS["face"]
    return out


def garment_label_map(mask: np.ndarray, category: TryOnCategory) -> np.ndarray:
    """FASHN-label map of a garment image: :data:`GARMENT_LABEL` where ``mask`` (bool (H, W)), else 0."""
    return np.where(mask, FASHN_LABELS[GARMENT_LABEL[category]], 0).astype(np.uint8)


class OwnParser:
    """Stands in for ``fashn_human_parser.FashnHumanParser`` inside FASHN's pipeline (no weights).

    :meth:`expect` queues the label maps of one render in the order the pipeline parses its inputs
    (person, then garment); :meth:`predict` returns the next one resized (nearest) to the image it is
    given. Raises RuntimeError when the pipeline asks for more parses than were queued, or leaves some
    unused (:meth:`done`): the upstream call order changed and the adapter must be checked.
    """

    def __init__(self) -> None:
        self._pending: list[np.ndarray] = []
        self.lock = threading.Lock()  # one render at a time: the queue belongs to the current call

    def expect(self, *maps: np.ndarray) -> None:
        self._pending = list(maps)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label map uint8 (h, w) for ``image`` (h, w, 3): the next queued map at that size."""
        if not self._pending:
            raise RuntimeError("FASHN pipeline asked for an unexpected human parse (own-parser mode)")
        labels = self._pending.pop(0)
        h, w = image.shape[:2]
        if labels.shape != (h, w):
            labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        return labels

    def done(self) -> None:
        left, self._pending = len(self._pending), []
        if left:
            raise RuntimeError(
                f"FASHN pipeline used {left} fewer human parses than expected (own-parser mode)"
            )
