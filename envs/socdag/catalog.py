"""The built-in SoC, task types, latency table and application DAGs, plus the HEFT paper's canonical example.

The SoC follows the shape of the DS3 / DeepSoCS reference platform (big and little Arm clusters next to FFT,
matrix-multiply and Viterbi-decoder accelerators). The applications are authored from the public block diagrams of
each pipeline (IEEE 802.11a transmitter and receiver, LFM range detection, pulse-Doppler radar, single-carrier
TX/RX): one task per processing block, several OFDM symbols or radar pulses as parallel branches. Latencies (us)
and data volumes (bytes) are set by hand to plausible orders of magnitude (an accelerator runs its kernel type
5-10x faster than a big core, a little core is ~2.3x slower than a big one); they are model inputs, not
measurements. ``schedgym calibrate`` (replay issue) is where measured tables come from.
"""

from __future__ import annotations

import numpy as np

from schedgym.envs.socdag.instance import SocDagInstance, SocSpec, TaskGraph

PE_TYPES = ("big", "little", "fft", "mm", "viterbi")
#: 4 big + 4 little cores, 2 FFT, 2 matrix-multiply and 1 Viterbi accelerator; a 1 GB/s on-chip interconnect.
DEFAULT_SOC = SocSpec.uniform("ds3-like", PE_TYPES, {"big": 4, "little": 4, "fft": 2, "mm": 2, "viterbi": 1}, 1000.0)

_ = np.nan
#: task type -> expected latency (us) on big, little, fft, mm, viterbi (NaN: that PE type cannot run it).
LATENCY_TABLE_US: dict[str, tuple[float, float, float, float, float]] = {
    "scrambler": (8, 19, _, _, _),
    "encoder": (14, 32, _, _, _),
    "interleaver": (8, 18, _, _, _),
    "qpsk_mod": (10, 23, _, _, _),
    "pilot_insert": (4, 9, _, _, _),
    "ifft": (60, 140, 10, _, _),
    "fft": (60, 140, 10, _, _),
    "crc": (6, 14, _, _, _),
    "match_filter": (40, 95, _, 8, _),
    "payload_extract": (5, 12, _, _, _),
    "pilot_extract": (5, 11, _, _, _),
    "demod": (12, 28, _, _, _),
    "deinterleaver": (8, 18, _, _, _),
    "viterbi_decoder": (120, 280, _, _, 15),
    "descrambler": (8, 19, _, _, _),
    "lfm_gen": (20, 46, _, _, _),
    "conj_mult": (15, 35, _, 4, _),
    "max_detect": (10, 23, _, _, _),
    "amplitude": (12, 28, _, 3, _),
    "corner_turn": (20, 45, _, 6, _),
    "fir_filter": (35, 80, _, 7, _),
    "sync": (25, 58, _, 6, _),
}
TASK_TYPES = tuple(LATENCY_TABLE_US)
LATENCY_US = np.array(list(LATENCY_TABLE_US.values()), dtype=float)


class _Builder:
    """Adds typed tasks and edges; ``graph()`` freezes them into a :class:`TaskGraph`."""

    def __init__(self, name: str) -> None:
        self.name, self.types, self.edges, self.data = name, [], [], []

    def task(self, task_type: str, *parents: int, data_bytes: float = 4096) -> int:
        self.types.append(TASK_TYPES.index(task_type))
        task = len(self.types) - 1
        for parent in parents:
            self.edges.append((parent, task))
            self.data.append(data_bytes)
        return task

    def graph(self) -> TaskGraph:
        return TaskGraph(self.name, np.array(self.types), np.array(self.edges).reshape(-1, 2), np.array(self.data, dtype=float))


def wifi_tx(symbols: int = 3) -> TaskGraph:
    """802.11a transmitter: scramble and encode the frame, then per OFDM symbol interleave, QPSK-map, insert
    pilots and IFFT; a CRC over the output."""
    b = _Builder("wifi_tx")
    encoded = b.task("encoder", b.task("scrambler"))
    outputs = []
    for _ in range(symbols):
        mapped = b.task("qpsk_mod", b.task("interleaver", encoded, data_bytes=2048), data_bytes=2048)
        outputs.append(b.task("ifft", b.task("pilot_insert", mapped), data_bytes=4096))
    b.task("crc", *outputs, data_bytes=4096)
    return b.graph()


def wifi_rx(symbols: int = 3) -> TaskGraph:
    """802.11a receiver: matched filter and payload extraction, per symbol FFT, pilot extraction, demodulation and
    deinterleaving, then Viterbi decoding, descrambling and a CRC."""
    b = _Builder("wifi_rx")
    payload = b.task("payload_extract", b.task("match_filter"), data_bytes=8192)
    symbols_out = []
    for _ in range(symbols):
        equalized = b.task("pilot_extract", b.task("fft", payload, data_bytes=4096), data_bytes=4096)
        symbols_out.append(b.task("deinterleaver", b.task("demod", equalized), data_bytes=2048))
    decoded = b.task("viterbi_decoder", *symbols_out, data_bytes=2048)
    b.task("crc", b.task("descrambler", decoded, data_bytes=1024), data_bytes=1024)
    return b.graph()


def range_detection() -> TaskGraph:
    """LFM range detection: FFT of the received signal and of the generated reference chirp, conjugate multiply,
    IFFT back to range, then the peak."""
    b = _Builder("range_detection")
    reference = b.task("fft", b.task("lfm_gen"), data_bytes=8192)
    received = b.task("fft")
    b.task("max_detect", b.task("ifft", b.task("conj_mult", reference, received, data_bytes=8192), data_bytes=8192), data_bytes=8192)
    return b.graph()


def pulse_doppler(pulses: int = 4, doppler_bins: int = 2) -> TaskGraph:
    """Pulse-Doppler radar: per pulse a matched filter in the frequency domain (FFT, conjugate multiply with the
    reference spectrum, IFFT), a corner turn, per Doppler bin block an FFT across pulses and the amplitude, then
    the peak."""
    b = _Builder("pulse_doppler")
    reference = b.task("fft", b.task("lfm_gen"), data_bytes=8192)
    compressed = [b.task("ifft", b.task("conj_mult", reference, b.task("fft"), data_bytes=8192), data_bytes=8192) for _ in range(pulses)]
    turned = b.task("corner_turn", *compressed, data_bytes=8192)
    amplitudes = [b.task("amplitude", b.task("fft", turned, data_bytes=16384), data_bytes=8192) for _ in range(doppler_bins)]
    b.task("max_detect", *amplitudes, data_bytes=4096)
    return b.graph()


def sc_tx() -> TaskGraph:
    """Single-carrier transmitter: CRC, scrambling, encoding, interleaving, QPSK mapping, pulse-shaping filter."""
    b = _Builder("sc_tx")
    task = b.task("crc")
    for kind in ("scrambler", "encoder", "interleaver", "qpsk_mod", "fir_filter"):
        task = b.task(kind, task, data_bytes=2048)
    return b.graph()


def sc_rx() -> TaskGraph:
    """Single-carrier receiver: matched filter, synchronisation, channel estimate (FFT) beside payload extraction,
    demodulation, deinterleaving, Viterbi decoding, descrambling and a CRC."""
    b = _Builder("sc_rx")
    synced = b.task("sync", b.task("fir_filter"), data_bytes=4096)
    task = b.task("demod", b.task("fft", synced, data_bytes=4096), b.task("payload_extract", synced, data_bytes=4096), data_bytes=4096)
    for kind in ("deinterleaver", "viterbi_decoder", "descrambler", "crc"):
        task = b.task(kind, task, data_bytes=2048)
    return b.graph()


#: The application DAGs, by name.
APPLICATIONS: dict[str, TaskGraph] = {g.name: g for g in (wifi_tx(), wifi_rx(), range_detection(), pulse_doppler(), sc_tx(), sc_rx())}


def application_instance(name: str) -> SocDagInstance:
    """One application DAG alone on the default SoC, arriving at time 0, no noise."""
    return SocDagInstance(name, DEFAULT_SOC, TASK_TYPES, LATENCY_US, (APPLICATIONS[name],), np.array([0]), np.array([0.0]))


def topcuoglu2002() -> SocDagInstance:
    """The 10-task, 3-processor example of Topcuoglu, Hariri & Wu (IEEE TPDS 13(3), 2002, Fig. 2): computation
    costs per task and processor, communication costs on the edges (paid between different processors).
    Each task is its own type and each processor its own PE type; with bandwidth 1, data volume = cost.
    HEFT's makespan is 80 in the paper; CP-SAT proves 73 optimal."""
    costs = np.array(
        [[14, 16, 9], [13, 19, 18], [11, 13, 19], [13, 8, 17], [12, 13, 10],
         [13, 16, 9], [7, 15, 11], [5, 11, 14], [18, 12, 20], [21, 7, 16]],
        dtype=float,
    )
    edges = [(1, 2, 18), (1, 3, 12), (1, 4, 9), (1, 5, 11), (1, 6, 14), (2, 8, 19), (2, 9, 16), (3, 7, 23),
             (4, 8, 27), (4, 9, 23), (5, 9, 13), (6, 8, 15), (7, 10, 17), (8, 10, 11), (9, 10, 13)]
    graph = TaskGraph(
        "topcuoglu2002",
        np.arange(10),
        np.array([(a - 1, b - 1) for a, b, _ in edges]),
        np.array([c for _, _, c in edges], dtype=float),
    )
    soc = SocSpec("topcuoglu2002", ("P1", "P2", "P3"), np.arange(3), np.ones((3, 3)))
    return SocDagInstance(
        "topcuoglu2002", soc, tuple(f"n{i}" for i in range(1, 11)), costs, (graph,), np.array([0]), np.array([0.0]),
        optimum_us=73.0, reference="Topcuoglu, Hariri & Wu, IEEE TPDS 13(3):260-274, 2002, Fig. 2",
    )
