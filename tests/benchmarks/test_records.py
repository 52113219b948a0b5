import json

import pytest

from keras_bnn_af.benchmarks.records import (
    BenchmarkRecord,
    ResultsFileError,
    append_records,
    read_records,
)


def record(**changes) -> BenchmarkRecord:
    values = dict(
        time="2024-05-01T12:00:00+00:00",
        device={"device": "local", "arch": "x86_64"},
        model_name="tiny",
        model_path="/tmp/tiny.tflite",
        model_sha256="0" * 64,
        binary_name="lce_benchmark_model_aarch64",
        binary_sha256="1" * 64,
        flags=["--num_threads=1", "--num_runs=5", "--warmup_runs=1"],
        threads=1,
        runs=5,
        warmup=1,
        avg_ms=1.5,
        std_ms=0.1,
        min_ms=1.2,
        count=5,
        first_ms=2.0,
        warmup_avg_ms=1.8,
        init_ms=3.0,
        memory_mb=None,
        role="A",
        session="abc",
        round=0,
        index=0,
        log="count=5 first=2000 ...\nsecond line \u2028 with a separator",
    )
    values.update(changes)
    return BenchmarkRecord(**values)


def test_round_trip_through_json():
    first = record()
    assert BenchmarkRecord.from_json(json.loads(json.dumps(first.to_json()))) == first


def test_warnings_round_trip_and_older_records_without_them_still_read():
    warned = record(warnings=("a 32-bit OS on a 64-bit CPU",))
    assert BenchmarkRecord.from_json(json.loads(json.dumps(warned.to_json()))) == warned
    older = record().to_json()
    del older["warnings"], older["schema"]
    assert BenchmarkRecord.from_json(older).warnings == ()


def test_append_only_keeps_the_existing_bytes_as_a_prefix(tmp_path):
    path = tmp_path / "bench.jsonl"
    append_records(path, [record()])
    before = path.read_bytes()
    append_records(path, [record(role="B", index=1), record(role="A-control")])
    after = path.read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    assert [r.role for r in read_records(path)] == ["A", "B", "A-control"]
    assert len(after.splitlines()) == 3


def test_a_last_line_without_newline_is_ended_not_rewritten(tmp_path):
    path = tmp_path / "bench.jsonl"
    head = json.dumps(record().to_json()).encode()
    path.write_bytes(head)  # valid JSON lines, no final newline
    append_records(path, [record(index=1)])
    after = path.read_bytes()
    assert after.startswith(head + b"\n")
    assert [r.index for r in read_records(path)] == [0, 1]


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b'{"a": 1}\nnot json\n', 2, "does not parse as JSON"),
        (b'{"a": 1}\n{"b": 2}\n[1, 2]\n', 3, "JSON list, not an object"),
        (b"# a markdown report\n", 1, "does not parse as JSON"),
        (b'{"a": 1}\n\n', 2, "does not parse as JSON"),
    ],
)
def test_a_file_that_is_not_json_lines_is_refused_untouched(
    tmp_path, content, line, problem
):
    path = tmp_path / "bench.jsonl"
    path.write_bytes(content)
    with pytest.raises(ResultsFileError) as error:
        append_records(path, [record()])
    message = str(error.value)
    assert f"Line {line} of results file {str(path)!r}" in message
    assert problem in message
    assert "Expected: a JSON-lines file" in message and "Fix: " in message
    assert path.read_bytes() == content
    with pytest.raises(ResultsFileError, match=f"Line {line} of"):
        read_records(path)
    assert path.read_bytes() == content


def test_binary_content_is_refused_untouched(tmp_path):
    path = tmp_path / "bench.jsonl"
    content = b"\xff\xfe\x00binary"
    path.write_bytes(content)
    with pytest.raises(ResultsFileError, match="not UTF-8 text"):
        append_records(path, [record()])
    assert path.read_bytes() == content


def test_reading_names_a_json_object_that_is_not_a_record(tmp_path):
    path = tmp_path / "bench.jsonl"
    append_records(path, [record()])
    with path.open("a") as file:
        file.write('{"model_name": "x"}\n')
    with pytest.raises(ResultsFileError, match=r"Line 2 of .* record \(missing field"):
        read_records(path)


def test_reading_a_missing_file_says_so(tmp_path):
    with pytest.raises(ResultsFileError, match="does not exist"):
        read_records(tmp_path / "absent.jsonl")
