"""G.711 tables against the `audioop` oracle (exhaustively) and the standard's known vectors."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from adapters.media.g711 import ALAW, MULAW, PCM16, Codec, G711Codec, codec_for

ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(65536, dtype=np.uint16).astype("<u2").tobytes()


def _scalar_reference() -> SimpleNamespace:
    """A per-sample port of CPython's audioop G.711 C code, used only where audioop is gone (3.13+)."""

    def ulaw2lin(code: int) -> int:
        u = ~code & 0xFF
        t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
        return (0x84 - t) if u & 0x80 else (t - 0x84)

    def alaw2lin(code: int) -> int:
        a = code ^ 0x55
        t = (a & 0x0F) << 4
        seg = (a & 0x70) >> 4
        t = t + 8 if seg == 0 else (t + 0x108) << (seg - 1) if seg > 1 else t + 0x108
        return t if a & 0x80 else -t

    def search(value: int, ends: tuple[int, ...]) -> int:
        return next((i for i, end in enumerate(ends) if value <= end), len(ends))

    def lin2ulaw(sample: int) -> int:
        pcm = sample >> 2
        mask = 0x7F if pcm < 0 else 0xFF
        pcm = min(abs(pcm), 8159) + 33
        seg = search(pcm, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
        return (0x7F if seg >= 8 else (seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask

    def lin2alaw(sample: int) -> int:
        pcm = sample >> 3
        mask = 0xD5 if pcm >= 0 else 0x55
        if pcm < 0:
            pcm = -pcm - 1
        seg = search(pcm, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
        if seg >= 8:
            return 0x7F ^ mask
        return ((seg << 4) | ((pcm >> 1 if seg < 2 else pcm >> seg) & 0xF)) ^ mask

    def decoder(f: Callable[[int], int]) -> Callable[[bytes, int], bytes]:
        return lambda data, _w: np.array([f(b) for b in data], dtype="<i2").tobytes()

    def encoder(f: Callable[[int], int]) -> Callable[[bytes, int], bytes]:
        return lambda data, _w: bytes(f(int(s)) for s in np.frombuffer(data, dtype="<i2"))

    return SimpleNamespace(
        ulaw2lin=decoder(ulaw2lin),
        alaw2lin=decoder(alaw2lin),
        lin2ulaw=encoder(lin2ulaw),
        lin2alaw=encoder(lin2alaw),
    )


@pytest.fixture(scope="module")
def oracle() -> SimpleNamespace:
    """CPython's `audioop` (deprecated in 3.11, removed in 3.13), else a scalar port of its C code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
    except ImportError:
        return _scalar_reference()
    return SimpleNamespace(
        ulaw2lin=audioop.ulaw2lin,
        alaw2lin=audioop.alaw2lin,
        lin2ulaw=audioop.lin2ulaw,
        lin2alaw=audioop.lin2alaw,
    )


def test_mulaw_decodes_all_256_codes_like_audioop(oracle: SimpleNamespace) -> None:
    assert MULAW.decode(ALL_CODES) == oracle.ulaw2lin(ALL_CODES, 2)


def test_alaw_decodes_all_256_codes_like_audioop(oracle: SimpleNamespace) -> None:
    assert ALAW.decode(ALL_CODES) == oracle.alaw2lin(ALL_CODES, 2)


def test_mulaw_encodes_all_65536_samples_like_audioop(oracle: SimpleNamespace) -> None:
    assert MULAW.encode(ALL_SAMPLES) == oracle.lin2ulaw(ALL_SAMPLES, 2)


def test_alaw_encodes_all_65536_samples_like_audioop(oracle: SimpleNamespace) -> None:
    assert ALAW.encode(ALL_SAMPLES) == oracle.lin2alaw(ALL_SAMPLES, 2)


def test_scalar_reference_agrees_with_the_oracle(oracle: SimpleNamespace) -> None:
    """Keeps the 3.13+ fallback honest while audioop still exists."""
    reference = _scalar_reference()
    sample = np.arange(-32768, 32768, 7, dtype="<i2").tobytes()
    assert reference.ulaw2lin(ALL_CODES, 2) == oracle.ulaw2lin(ALL_CODES, 2)
    assert reference.alaw2lin(ALL_CODES, 2) == oracle.alaw2lin(ALL_CODES, 2)
    assert reference.lin2ulaw(sample, 2) == oracle.lin2ulaw(sample, 2)
    assert reference.lin2alaw(sample, 2) == oracle.lin2alaw(sample, 2)


def _sample(value: int) -> bytes:
    return value.to_bytes(2, "little", signed=True)


@pytest.mark.parametrize(
    ("code", "pcm"),
    [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xFE, 8), (0x7E, -8)],
)
def test_mulaw_known_decode_vectors(code: int, pcm: int) -> None:
    assert MULAW.decode(bytes([code])) == _sample(pcm)


@pytest.mark.parametrize(
    ("pcm", "code"),
    [(0, 0xFF), (32767, 0x80), (-32768, 0x00), (32124, 0x80), (-32124, 0x00), (-1, 0x7E), (-4, 0x7E)],
)
def test_mulaw_known_encode_vectors(pcm: int, code: int) -> None:
    assert MULAW.encode(_sample(pcm)) == bytes([code])


def test_alaw_known_vectors() -> None:
    # Silence encodes to 0xD5; A-law has no zero level, so 0xD5 decodes to the smallest step, +8.
    assert ALAW.encode(_sample(0)) == b"\xd5"
    assert ALAW.decode(b"\xd5") == _sample(8)
    assert ALAW.decode(b"\x55") == _sample(-8)
    assert ALAW.decode(b"\xaa") == _sample(32256)
    assert ALAW.decode(b"\x2a") == _sample(-32256)
    assert ALAW.encode(_sample(32767) + _sample(-32768)) == b"\xaa\x2a"


def test_mulaw_round_trips_every_code_except_negative_zero() -> None:
    again = MULAW.encode(MULAW.decode(ALL_CODES))
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF  # -0 and +0 both decode to 0, which encodes as +0
    assert again == bytes(expected)


def test_alaw_round_trips_every_code() -> None:
    assert ALAW.encode(ALAW.decode(ALL_CODES)) == ALL_CODES


@pytest.mark.parametrize("codec", [MULAW, ALAW])
def test_decode_then_encode_is_idempotent_on_pcm(codec: G711Codec) -> None:
    once = codec.decode(codec.encode(ALL_SAMPLES))
    assert codec.decode(codec.encode(once)) == once


@pytest.mark.parametrize("codec", [MULAW, ALAW, PCM16])
def test_odd_length_pcm_is_rejected(codec: Codec) -> None:
    with pytest.raises(ValueError, match="even byte count"):
        codec.encode(b"\x00\x01\x02")


@pytest.mark.parametrize("codec", [MULAW, ALAW])
def test_sizes_and_empty_input(codec: G711Codec) -> None:
    assert codec.decode(b"") == b""
    assert codec.encode(b"") == b""
    assert len(codec.decode(bytes(160))) == 320
    assert len(codec.encode(bytes(320))) == 160
    assert codec.sample_width == 1


@pytest.mark.parametrize("codec", [MULAW, ALAW])
def test_accepts_bytearray_and_memoryview(codec: G711Codec) -> None:
    pcm = np.arange(-1600, 1600, 20, dtype="<i2").tobytes()
    encoded = codec.encode(pcm)
    assert codec.encode(bytearray(pcm)) == encoded
    assert codec.encode(memoryview(pcm)) == encoded
    assert codec.decode(bytearray(encoded)) == codec.decode(encoded)
    assert codec.decode(memoryview(encoded)) == codec.decode(encoded)


def test_silence() -> None:
    assert MULAW.silence(160) == b"\xff" * 160
    assert ALAW.silence(3) == b"\xd5" * 3
    assert PCM16.silence(2) == bytes(4)


def test_pcm16_passes_through_and_rejects_odd_payloads() -> None:
    pcm = np.arange(-5, 5, dtype="<i2").tobytes()
    assert PCM16.decode(pcm) == pcm
    assert PCM16.encode(pcm) == pcm
    assert PCM16.sample_width == 2
    with pytest.raises(ValueError, match="even byte count"):
        PCM16.decode(b"\x00")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mulaw", MULAW),
        ("audio/x-mulaw", MULAW),
        ("PCMU", MULAW),
        ("ulaw", MULAW),
        ("alaw", ALAW),
        ("audio/x-alaw", ALAW),
        ("pcma", ALAW),
        ("pcm16", PCM16),
    ],
)
def test_codec_for(name: str, expected: Codec) -> None:
    assert codec_for(name) is expected


def test_codec_for_refuses_unknown_encodings() -> None:
    with pytest.raises(ValueError, match="unsupported audio encoding"):
        codec_for("audio/opus")


def test_g711_codec_checks_table_sizes() -> None:
    with pytest.raises(ValueError, match="256 decode and 65536 encode"):
        G711Codec("bad", MULAW.decode_table[:10], MULAW.encode_table)
