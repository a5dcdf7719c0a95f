"""Live kernel probes with recorded fallbacks.

``run(NAME)`` measures on this machine when it allows (root, the /proc and
/sys files, the syscalls), otherwise returns the recording in
``data/probes/NAME.json``. Either way the result says which
(``result.source`` is "live" or "recorded"), where and when it was measured
(``result.kernel``, ``result.recorded_at``, ``result.provenance``) and
``result.note()`` gives one line for a chapter to print.

Probes: pins, btf, zerocopy, vmsplice, faults, pagemap, kpageflags, memcpy, kcount, kcount_splice,
kcount_rx, kcount_copy, kcount_filemap, atomics, memlat, gup, cow, gup_paths, cow_mthp,
zcsend.
"""

from ._core import (ENV, MODES, NAMES, ProbeResult, ProbeUnavailable, combined_source, load_recording,
                    machine_lock, measure_live, notes, record, recording_path, recordings_kernel, resolve_mode,
                    run, run_all)

__all__ = ["ENV", "MODES", "NAMES", "ProbeResult", "ProbeUnavailable", "combined_source", "load_recording",
           "machine_lock", "measure_live", "notes", "record", "recording_path", "recordings_kernel",
           "resolve_mode", "run", "run_all"]
