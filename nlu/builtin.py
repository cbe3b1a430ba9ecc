"""The builtin backend: one artifact (category + intent models, stop list, taxonomy) plus rules."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .base import Category, Intent, Location, Parse
from .category import FALLBACK_MAX_P, CategoryModel, Taxonomy
from .departments import DepartmentMap
from .intents import IntentModel, classify
from .location import GAZETTEER_PATH, LocationExtractor, load_gazetteer
from .other_classes import OtherClassGate
from .request_type import RequestTypeModel
from .rules import request_type, urgency
from .subject import SubjectModel, make_subject
from .text import clean, clean_aligned, to_simplified, to_simplified_aligned, tokens, well_formed
from .urgency import MIN_CHARS as URGENT_MIN_CHARS
from .urgency import SHORT_CHARS as URGENT_SHORT_CHARS
from .urgency import SHORT_THRESHOLD as URGENT_SHORT_THRESHOLD
from .urgency import THRESHOLD as URGENT_THRESHOLD
from .urgency import UrgencyModel

MODEL_DIR = Path(__file__).resolve().parent / "model"
ARTIFACT_NAME = "nlu-model.npz"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
LOW_CONFIDENCE = 0.6  # below this the bot should ask a question or hand over
MAX_TEXT = 10_000  # analysed prefix; Parse.text keeps the original


class ArtifactMissing(RuntimeError):
    pass


def artifact_path(model_path: Path | None = None) -> Path:
    if model_path:
        p = Path(model_path)
        return p / ARTIFACT_NAME if p.is_dir() else p
    return MODEL_DIR / ARTIFACT_NAME


def load_artifact(path: Path, other_classes: bool = True) -> dict[str, Any]:
    """The artifact is a compressed ``.npz`` of plain arrays plus one JSON ``meta`` string:
    no pickle, so loading it cannot run code, and scikit-learn is not imported to serve.
    ``other_classes=False`` leaves the opt-in eight-class gate unbuilt (~7 MB less resident)."""
    import json

    path = Path(path)
    if not path.exists():
        raise ArtifactMissing(
            f"NLU model artifact not found at {path}. Train it with `hotline nlu train` "
            "(or set HOTLINE_NLU_MODEL_PATH to an existing artifact)."
        )
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    return {
        **meta,
        "category": CategoryModel.from_arrays(arrays, meta["category_classes"]),
        "intents": IntentModel.from_arrays(arrays, meta["intent_classes"]),
        "subject": SubjectModel(
            np.asarray(arrays["subject_coef"], dtype=np.float32), meta.get("subject_intercept", 0.0)
        )
        if "subject_coef" in arrays
        else None,
        "request_type": RequestTypeModel.from_arrays(arrays),
        "urgency": UrgencyModel.from_arrays(arrays),
        "other_classes": OtherClassGate.from_arrays(arrays) if other_classes else None,
        # fingerprints of the messages each model learned (nlu.evaluate.seen_in_training)
        "seen": {k.removeprefix("seen_"): v for k, v in arrays.items() if k.startswith("seen_")},
    }


def artifact_taxonomy(settings: Any = None) -> list[tuple[str, str, str]]:
    """The official taxonomy the model was trained with, read from the artifact's ``meta`` alone
    (a few KB: the models are not loaded), for a process that shows categories without parsing
    (the console's 更正); empty when there is no artifact."""
    import json

    path = artifact_path(getattr(settings, "nlu_model_path", None))
    if not path.exists():
        return []
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    return [(str(a), str(b), str(c)) for a, b, c in meta.get("taxonomy", [])]


def save_artifact(
    path: Path,
    meta: dict[str, Any],
    category: CategoryModel,
    intents: IntentModel,
    subject: SubjectModel | None = None,
    request_type_model: RequestTypeModel | None = None,
    urgency_model: UrgencyModel | None = None,
    other_classes: OtherClassGate | None = None,
    seen: dict[str, list[int]] | None = None,
) -> None:
    """``seen``: per evaluation task, the fingerprints of the messages trained on."""
    import json

    meta = {**meta, "category_classes": category.classes, "intent_classes": intents.classes}
    extra: dict[str, np.ndarray] = {}
    if subject is not None and subject.coef is not None:
        meta["subject_intercept"] = subject.intercept
        extra["subject_coef"] = np.asarray(subject.coef, dtype=np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    arrays: dict[str, Any] = {
        "meta": np.array(json.dumps(meta, ensure_ascii=False)),
        **category.to_arrays(),
        **intents.to_arrays(),
        **extra,
        **(request_type_model.to_arrays() if request_type_model is not None else {}),
        **(urgency_model.to_arrays() if urgency_model is not None else {}),
        **(other_classes.to_arrays() if other_classes is not None else {}),
        **{f"seen_{task}": np.unique(np.asarray(v, dtype=np.uint32)) for task, v in (seen or {}).items()},
    }
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


class BuiltinBackend:
    name = "builtin"

    def __init__(
        self,
        artifact: dict[str, Any],
        gazetteer: dict[str, Any] | None = None,
        departments: DepartmentMap | None = None,
        urgency_threshold: float = URGENT_THRESHOLD,
        other_classes: bool = False,
        urgency_threshold_short: float = URGENT_SHORT_THRESHOLD,
    ):
        t0 = time.perf_counter()
        self.artifact = artifact
        self.urgency_threshold = urgency_threshold
        self.urgency_threshold_short = urgency_threshold_short
        # the gate for the eight classes without contest labels, when the deployment asks for it
        self.other_classes: OtherClassGate | None = artifact.get("other_classes") if other_classes else None
        self.stop = frozenset(artifact["stopwords"])
        self.category: CategoryModel = artifact["category"]
        self.intents: IntentModel = artifact["intents"]
        self.subject_model: SubjectModel | None = artifact.get("subject")
        self.request_type_model: RequestTypeModel | None = artifact.get("request_type")
        self.urgency_model: UrgencyModel | None = artifact.get("urgency")
        self.taxonomy = Taxonomy([tuple(r) for r in artifact["taxonomy"]])
        self.locator = LocationExtractor(gazetteer)
        self.departments = departments or DepartmentMap.load()
        self.parse("你好")  # warm every path once (weights are expanded lazily)
        self.parse(
            "A市A3区联丰路米兰春天小区门口的路灯坏了好几天，晚上很黑，希望有关部门尽快维修。",
            {"title": "路灯坏了"},
        )
        self.load_seconds = time.perf_counter() - t0

    @classmethod
    def from_settings(cls, settings: Any) -> BuiltinBackend:
        t0 = time.perf_counter()
        other_classes = bool(getattr(settings, "nlu_other_classes", False))
        art = load_artifact(artifact_path(getattr(settings, "nlu_model_path", None)), other_classes)
        gaz = load_gazetteer(GAZETTEER_PATH)
        b = cls(
            art,
            gaz,
            DepartmentMap.load(CONFIG_DIR / "departments.yml"),
            getattr(settings, "nlu_urgency_threshold", URGENT_THRESHOLD),
            other_classes,
            getattr(settings, "nlu_urgency_threshold_short", URGENT_SHORT_THRESHOLD),
        )
        b.load_seconds = time.perf_counter() - t0
        return b

    def _other_class(self, p: np.ndarray, text: str, title: str) -> np.ndarray:
        """One of the eight classes without contest labels, when the gate is sure enough: it then
        gets the keyword fallback's low probability (the bot asks or hands over)."""
        gate = self.other_classes
        classes = self.category.classes
        k, _ = gate.best(text, title) if gate is not None else ("", 0.0)
        if not k or k not in classes or classes[int(np.argmax(p))] == k:
            return p
        q = p * (1.0 - FALLBACK_MAX_P) / max(1e-9, 1.0 - p[classes.index(k)])
        q[classes.index(k)] = FALLBACK_MAX_P
        return q

    def classify_category(self, text: str, title: str = "") -> Category:
        doc = " ".join(tokens((title + " " + text).strip(), self.stop))
        if not doc:
            return Category(low_confidence=True)
        p = self.category.proba_one(doc)
        if self.other_classes is not None:
            p = self._other_class(p, text, title)
        ranking = sorted(
            zip(self.category.classes, (float(x) for x in p), strict=True), key=lambda kv: -kv[1]
        )
        l1, conf = ranking[0]
        # very short texts carry little evidence whatever the model says
        n_tok = len(doc.split())
        if n_tok < 4:
            conf *= n_tok / 4
        l2, l3 = self.taxonomy.suggest(l1, title + text)
        return Category(
            level1=l1,
            level2=l2,
            level3=l3,
            confidence=round(conf, 4),
            ranking=[(k, round(v, 4)) for k, v in ranking],
            low_confidence=conf < LOW_CONFIDENCE,
        )

    def urgency(self, text: str, title: str) -> tuple[bool, str, str]:
        """(urgent, reason, source): the rules first (they name the danger), else the learned
        model (phrasings they miss)."""
        found, reason = urgency(title + "。" + text)
        if found:
            return True, reason, "rules"
        model = self.urgency_model
        n = len(title) + len(text.strip())
        if model is not None and n >= URGENT_MIN_CHARS:
            p = model.proba(text, title)
            if p >= (self.urgency_threshold_short if n < URGENT_SHORT_CHARS else self.urgency_threshold):
                return True, f"疑似紧急: 与已标注的紧急诉求相似 (模型 {p:.2f})", "model"
        return False, "", ""

    def parse(self, text: str, context: dict[str, Any] | None = None) -> Parse:
        context = context or {}
        original = well_formed(text if isinstance(text, str) else str(text or ""))
        if "title" in context:
            context = {**context, "title": well_formed(str(context["title"] or ""))}
        try:
            return self._parse(original, context)
        except Exception:  # never raise to the bot: a low-confidence empty parse instead
            return Parse(text=original, intent=Intent(name="new_request", confidence=0.0))

    def _parse(self, original: str, context: dict[str, Any]) -> Parse:
        # Traditional Chinese is read as Simplified, character for character, so positions still
        # index the original: spans are reported as the citizen wrote them.
        text = to_simplified_aligned(clean_aligned(original[:MAX_TEXT]))
        title = to_simplified(clean(str(context.get("title") or "")))
        ranking, entities = classify(self.intents, text, context)
        intent = ranking[0] if ranking else Intent(name="new_request", confidence=0.0)
        parse = Parse(text=original, intent=intent, intent_ranking=ranking, entities=entities)
        if not any("\u4e00" <= ch <= "\u9fff" for ch in title + text):
            return parse  # nothing Chinese to read: low confidence, no location
        # urgency is always checked: a danger must never hide behind a short or odd message
        parse.urgency, parse.urgency_reason, parse.urgency_source = self.urgency(text, title)
        is_request = intent.name in ("new_request", "add_info") or len(text) > 15
        if not is_request:
            return parse
        parse.category = self.classify_category(text, title)
        model = self.request_type_model
        rt, conf, _ = model.predict(text, title) if model is not None else request_type(text, title)
        parse.request_type, parse.request_type_confidence = rt, conf
        loc = self.locator.extract(text)
        if loc.found:
            loc.text = original[loc.start : loc.end]  # the span as the citizen wrote it
        if not loc.found and title:
            tl = self.locator.extract(title)
            if tl.found:  # where is in the title only: report parts, no span in text
                loc = Location(**{**tl.model_dump(), "start": -1, "end": -1})
        parse.location = loc
        # the subject is written in the (simplified) text it is cut from
        read = (
            loc.model_copy(update={"text": text[loc.start : loc.end]})
            if loc.found and loc.start >= 0
            else loc
        )
        parse.subject = make_subject(text, read, title, self.subject_model)
        kind = parse.urgency_reason.split(":")[0] if parse.urgency_source == "rules" else ""
        parse.departments = self.departments.suggest(parse.category.path(), kind)
        return parse
