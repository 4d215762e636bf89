import pytest

from ecgbench.data.classes import DATASET_CLASSES
from ecgbench.data.manifest import MANIFEST_DIR, ManifestError, StratifiedSplit
from ecgbench.data.registry import checked_manifest, get_manifest, register_dataset

PTBXL_TEXT = (MANIFEST_DIR / "ptbxl.toml").read_text()


@pytest.mark.parametrize("name", list(DATASET_CLASSES))
def test_every_study_dataset_has_a_valid_manifest_with_the_study_classes(name):
    m = get_manifest(name)
    assert m.classes == DATASET_CLASSES[name]
    assert len(m.signal.leads) == 12 and m.preprocess.rate_hz * m.preprocess.window_s == 1000
    assert m.source.homepage.startswith("https://") and m.source.downloads
    assert all(len(f.sha256) == 64 or f.sha256 == "unknown" for f in m.files)


def test_cinc_manifests_carry_the_snomed_equivalence_classes():
    cpsc = get_manifest("cpsc2018").labels.map
    assert set(cpsc["RBBB"]) == {"59118001", "713427006"}
    assert set(cpsc["LBBB"]) == {"164909002", "733534002"}
    assert set(cpsc["PAC"]) == {"284470004", "63593006"}
    assert set(cpsc["VEB"]) == {"164884008", "17338001", "427172004"}
    assert set(get_manifest("georgia").labels.map["PAC"]) == {"284470004", "63593006"}


def test_non_ptbxl_datasets_split_stratified_70_10_20_by_patient():
    for name in ("cpsc2018", "georgia", "ptb", "code_test"):
        split = get_manifest(name).split
        assert isinstance(split, StratifiedSplit) and split.group_by_patient
        assert (split.train, split.val, split.test) == (0.7, 0.1, 0.2)
    ptbxl = get_manifest("ptbxl").split
    assert (ptbxl.train, ptbxl.val, ptbxl.test) == (tuple(range(1, 9)), (9,), (10,))


@pytest.mark.parametrize("edit, message", [
    (lambda t: 'colour = "red"\n' + t, "unknown keys ['colour']"),
    (lambda t: t.replace('licence = "CC-BY-4.0"\n', ""), "missing keys ['licence']"),
    (lambda t: t.replace('scaling = "none"', 'scaling = "zscore"'), "'zscore' is not one of"),
    (lambda t: t.replace("record_count = 21799", 'record_count = "many"'), "expected int"),
    (lambda t: t.replace("min_likelihood = 0.0", "min_likelihood = 0.0\nthreshold = 1"), "unknown keys ['threshold']"),
    (lambda t: t.replace('CD = ["CD"]\n', ""), "must each have a labels.map entry"),
    (lambda t: t.replace("val = [9]", "val = [8]"), "more than one split"),
    (lambda t: t.replace('rule = "folds"', 'rule = "random"'), "'random' is not one of"),
    (lambda t: t.replace('leads = ["I", ', 'leads = ['), "must name 12 leads"),
])
def test_the_schema_is_strict(edit, message, tmp_path):
    """Format options are the loader's schema, checked where a manifest is registered (``checked_manifest``)."""
    path = tmp_path / "edited.toml"
    path.write_text(edit(PTBXL_TEXT))
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        checked_manifest(path)
    assert "edited.toml" in str(info.value)


def test_the_registry_refuses_a_taken_name_and_accepts_a_users_dataset(tmp_path):
    path = tmp_path / "my_ptb.toml"
    path.write_text((MANIFEST_DIR / "ptb.toml").read_text().replace('name = "ptb"', 'name = "my_ptb"'))
    copy = tmp_path / "ptb.toml"
    copy.write_text((MANIFEST_DIR / "ptb.toml").read_text())
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("ptb", copy)
    register_dataset("ptb", MANIFEST_DIR / "ptb.toml")  # the same file again (two --ecg-manifest): no error
    with pytest.raises(ManifestError, match="names dataset 'my_ptb'"):
        register_dataset("other", path)
    register_dataset("my_ptb", path)
    assert get_manifest("my_ptb").classes == ("NORM", "MI")
