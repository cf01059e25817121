"""Hostile inputs: every case of the generated corpus gives a result or a one-line reason through
the loader, batch classification and ``predict --json``; the rest of a batch is still classified;
folder walks survive link loops and 20,000 files; a fuzz test feeds random and mutated bytes to
the loader (marked slow; ``PIXELCLASSIFIER_FUZZ_EXAMPLES`` sets how many inputs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hostile import (NON_UTF8_NAME, counting, deny_reading, encoded, make_corpus,
                           make_many, noise)
from training import preprocessing
from training.predict import Classifier, classify_files, expand_paths, iter_image_files
from training.preprocessing import RESIZE_POLICIES, ImageRejected, Preprocessing, load_image

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, symlinks and byte file names")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "corpus"
    return folder, make_corpus(folder)


@pytest.fixture(scope="module")
def classifier(tiny_checkpoint):
    return Classifier.load(tiny_checkpoint)


def assert_one_line(reason: str) -> None:
    assert reason and "\n" not in reason and "Traceback" not in reason, repr(reason)


def mismatch(expect, ok: bool, text: str) -> str | None:
    """Why an outcome does not meet its expectation, or None when it does."""
    if ok != (expect.outcome == "ok"):
        return f"expected {expect.outcome}, got {'ok' if ok else 'refused'}: {text}"
    missing = [w for w in expect.words if w not in text]
    return f"missing {missing} in {text!r}" if missing else None


@pytest.mark.parametrize("policy", RESIZE_POLICIES)
def test_every_corpus_file_gives_a_report_or_a_one_line_reason(corpus, policy):
    folder, expected = corpus
    wrong = {}
    for name, expect in expected.items():
        try:
            report = load_image(folder / name, Preprocessing(resize=policy))
        except ImageRejected as exc:
            assert_one_line(str(exc))
            problem = mismatch(expect, False, str(exc))
        else:
            assert report.array.shape == (32, 32, 3) and report.array.dtype == np.uint8, name
            problem = mismatch(expect, True, " | ".join(report.conversions))
        if problem:
            wrong[name] = problem
    assert not wrong


def test_conversions_do_what_they_say(corpus):
    folder, _ = corpus
    for name in ("animated.gif", "animated.webp", "animated-apng.png"):
        red, _, blue = load_image(folder / name).array[16, 16].tolist()
        assert red > 150 and blue < 80, name  # the first (red) frame, not the second (blue)
    assert load_image(folder / "exif-rotated.jpg").original.size == (32, 64)  # upright
    transparent = load_image(folder / "palette-transparent.png").array
    assert transparent[0, 0].tolist() == [255, 255, 255] and transparent[16, 16, 0] > 150
    floats = load_image(folder / "float-nan.tif").array
    assert floats[0, 0].tolist() == [0, 0, 0] and floats[0, 1].tolist() == [255, 255, 255]


def test_classify_files_gives_one_result_per_file_in_order(corpus, classifier, tmp_path,
                                                          monkeypatch):
    folder, expected = corpus
    extra = tmp_path / "extra"
    extra.mkdir()
    for name in ("deleted.png", "unreadable.png", "fine.png"):
        (extra / name).write_bytes(encoded(Image.fromarray(noise(32, 32)), "PNG"))
    files = expand_paths([folder, extra, tmp_path / "never-there.png"])
    (extra / "deleted.png").unlink()  # between listing and loading
    deny_reading(monkeypatch, extra / "unreadable.png")
    results = list(classify_files(classifier, files, k=2))
    assert [r["path"] for r in results] == [str(f) for f in files]
    wrong = {}
    for result in results:
        path = Path(result["path"])
        if not result["ok"]:
            assert_one_line(result["error"])
        else:
            assert [g["label"] for g in result["top"]][0] in ("red", "green", "blue")
        if path.is_relative_to(folder):
            name = path.relative_to(folder).as_posix()
            text = " | ".join(result["input"]["conversions"]) if result["ok"] else result["error"]
            problem = mismatch(expected[name], result["ok"], text)
            if problem:
                wrong[name] = problem
    assert not wrong
    by_name = {Path(r["path"]).name: r for r in results}
    assert "not found" in by_name["deleted.png"]["error"]
    assert "not found" in by_name["never-there.png"]["error"]
    assert "permission denied" in by_name["unreadable.png"]["error"]
    assert by_name["fine.png"]["ok"]


def test_an_unexpected_error_on_one_file_leaves_the_others_classified(corpus, classifier,
                                                                     monkeypatch):
    folder, _ = corpus
    real = preprocessing.load_image

    def buggy(path, *args, **kwargs):
        if Path(path).name == "cmyk.jpg":
            raise RuntimeError("a decoder bug\nwith a second line")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(preprocessing, "load_image", buggy)
    names = ["rgba.png", "cmyk.jpg", "greyscale.jpg"]
    results = list(classify_files(classifier, [folder / n for n in names]))
    assert [r["ok"] for r in results] == [True, False, True]
    assert results[1]["error"] == "unexpected error: RuntimeError: a decoder bug"


def test_folder_walks_finish_on_link_loops_and_list_each_real_file_once(corpus):
    folder, expected = corpus
    loop = folder / "loop"
    assert list(iter_image_files(loop)) == [loop / "inside.png"]
    assert list(iter_image_files(loop / "self")) == [loop / "self" / "inside.png"]
    walked = [p.relative_to(folder).as_posix() for p in iter_image_files(folder)]
    assert sorted(walked) == sorted(expected)  # links to folders are listed, never entered
    assert expand_paths([loop / "parent"]) == list(iter_image_files(loop / "parent"))


def test_a_folder_of_20000_files_is_walked_in_order_and_classified(tmp_path, classifier,
                                                                   monkeypatch):
    paths, asked = make_many(tmp_path / "many"), []
    with monkeypatch.context() as patch:  # (about 0.2 s on 2 cores; a clock measures the load)
        for target in ("os.stat", "os.scandir", "builtins.open"):
            patch.setattr(target, counting(asked, target))
        assert list(iter_image_files(tmp_path / "many")) == paths
    assert asked.count("os.scandir") == 1 and asked.count("os.stat") < 10  # not once a file
    assert "builtins.open" not in asked  # and no file is read to list it
    sample = paths[::100]
    results = list(classify_files(classifier, sample, k=1))
    assert len(results) == len(sample) and all(r["ok"] for r in results)


@pytest.fixture(scope="module")
def cli_run(corpus, tiny_checkpoint, tmp_path_factory):
    """One ``predict --json`` run over the corpus, a 20,000-file folder, a vanished file, an
    unreadable one and the non-UTF-8 name given directly (one TensorFlow start for all)."""
    folder, _ = corpus
    extra = tmp_path_factory.mktemp("cli")
    many = make_many(extra / "many")
    locked = extra / "locked.png"
    locked.write_bytes(encoded(Image.new("RGB", (32, 32)), "PNG"))
    locked.chmod(0)  # root still reads it: then it must simply be classified
    args = [folder, extra / "many", extra / "vanished.png", locked,
            os.path.join(os.fsencode(folder), NON_UTF8_NAME)]
    proc = subprocess.run([sys.executable, "-m", "training", "predict", *args, "--json",
                           "--top-k", "2", "--checkpoint", str(tiny_checkpoint)],
                          capture_output=True, text=True, cwd=ROOT,
                          timeout=240)  # only a hang fails here (about 10 s on 2 cores)
    return proc, many, locked


def test_predict_json_gives_one_line_per_corpus_file(cli_run, corpus):
    proc, _, locked = cli_run
    folder, expected = corpus
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    wrong, corpus_rows = {}, [r for r in rows if Path(r["path"]).is_relative_to(folder)]
    for row in corpus_rows:
        if not row["ok"]:
            assert_one_line(row["error"])
        name = Path(row["path"]).relative_to(folder).as_posix()
        text = " | ".join(row["input"]["conversions"]) if row["ok"] else row["error"]
        if problem := mismatch(expected[name], row["ok"], text):
            wrong[name] = problem
    assert not wrong
    names = [Path(r["path"]).relative_to(folder).as_posix() for r in corpus_rows]
    assert sorted(names) == sorted(list(expected) + [os.fsdecode(NON_UTF8_NAME)])
    by_name = {Path(r["path"]).name: r for r in rows}
    assert "not found" in by_name["vanished.png"]["error"]
    locked_row = by_name["locked.png"]
    assert locked_row["ok"] if os.geteuid() == 0 else "permission denied" in locked_row["error"]


def test_predict_json_classifies_every_file_of_a_20000_file_folder(cli_run):
    proc, many, _ = cli_run
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    many_rows = [r for r in rows if Path(r["path"]).parent == many[0].parent]
    assert [r["path"] for r in many_rows] == [str(p) for p in many]
    assert all(r["ok"] for r in many_rows)


def test_predict_text_output_survives_a_name_that_is_not_utf8(corpus, tiny_checkpoint):
    folder, _ = corpus
    proc = subprocess.run([sys.executable, "-m", "training", "predict", "--checkpoint",
                           str(tiny_checkpoint), os.path.join(os.fsencode(folder), NON_UTF8_NAME),
                           str(folder / "cmyk.jpg")], capture_output=True, cwd=ROOT, timeout=240,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert proc.stdout.count(b"\n") == 2


def test_non_regular_files_are_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocessing, "MAX_FILE_BYTES", 1 << 20)  # bound any regression
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    with pytest.raises(ImageRejected, match="not a regular file"):
        load_image(tmp_path / "zero.png")
    with pytest.raises(ImageRejected, match="is a folder"):
        load_image(tmp_path)


FUZZ_EXAMPLES = int(os.environ.get("PIXELCLASSIFIER_FUZZ_EXAMPLES", "40000"))  # ~60 s, 2 cores


def loader_verdict(data: bytes) -> str:
    """Feed bytes to the loader; return "ok" or the reason up to its first colon. Fails on
    anything but a 32x32 RGB report or ImageRejected with a one-line reason."""
    try:
        report = load_image(data)
    except ImageRejected as exc:
        assert_one_line(str(exc))
        if exc.__cause__ is not None:  # an unexpected type: Pillow's parser, never our code
            frames = traceback.extract_tb(exc.__cause__.__traceback__)
            assert f"{os.sep}PIL{os.sep}" in frames[-1].filename, "".join(
                traceback.format_exception(exc.__cause__))
        return str(exc).split(":")[0]
    assert report.array.shape == (32, 32, 3) and report.array.dtype == np.uint8
    return "ok"


@pytest.mark.slow
def test_fuzzed_bytes_give_a_report_or_a_one_line_reason(capsys, tmp_path):
    from collections import Counter

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.hostile import fuzz_seeds, mutate

    seeds = fuzz_seeds()
    names = st.sampled_from(sorted(seeds))
    edit = st.tuples(st.integers(0, 6), st.integers(0, 2**20), st.binary(min_size=1, max_size=8))
    inputs = st.one_of(
        st.binary(max_size=2048).map(lambda data: ("random bytes", data)),
        st.tuples(names, st.integers(2, 96), st.binary(max_size=512)).map(
            lambda t: ("header + random", seeds[t[0]][:t[1]] + t[2])),
        st.tuples(names, st.lists(edit, min_size=1, max_size=6)).map(
            lambda t: (f"mutated {t[0]}", mutate(seeds[t[0]], t[1]))))
    tried, verdicts, slowest = Counter(), Counter(), [0.0]

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def feed(case):
        kind, data = case
        tried[kind.split()[0]] += 1
        start = time.perf_counter()
        verdicts[loader_verdict(data)] += 1
        slowest[0] = max(slowest[0], time.perf_counter() - start)

    from hypothesis.configuration import set_hypothesis_home_dir
    set_hypothesis_home_dir(tmp_path / ".hypothesis")  # its caches stay out of the checkout
    start = time.perf_counter()
    try:
        feed()
    finally:
        set_hypothesis_home_dir(None)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nfuzz: {sum(tried.values())} inputs in {seconds:.0f} s ({dict(tried)}); "
              f"slowest {slowest[0] * 1000:.0f} ms; verdicts {dict(verdicts.most_common())}")
    assert sum(tried.values()) >= FUZZ_EXAMPLES


def test_linked_folders_are_searched_once_each(tmp_path):
    """A folder of linked albums is searched as a file manager shows it; a folder reached twice
    (a link to a sibling, a link back up) is entered once."""
    real = tmp_path / "real"
    for album in ("cats", "dogs"):
        (real / album).mkdir(parents=True)
        (real / album / "1.png").write_bytes(encoded(Image.new("RGB", (8, 8)), "PNG"))
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "cats").symlink_to(real / "cats")
    (linked / "dogs").symlink_to(real / "dogs")
    (linked / "zz-cats-again").symlink_to(real / "cats")
    (linked / "up").symlink_to(linked)
    assert list(iter_image_files(linked)) == [linked / "cats" / "1.png", linked / "dogs" / "1.png"]
    assert expand_paths([linked]) == list(iter_image_files(linked))


def test_an_album_dropped_beside_a_folder_linking_to_it_is_listed_once(tmp_path):
    album = tmp_path / "holiday"
    album.mkdir()
    (album / "1.png").write_bytes(encoded(Image.new("RGB", (8, 8)), "PNG"))
    (tmp_path / "albums").mkdir()
    (tmp_path / "albums" / "holiday").symlink_to(album)
    assert expand_paths([tmp_path / "albums", album]) == [tmp_path / "albums" / "holiday" / "1.png"]
