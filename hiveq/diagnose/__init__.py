"""diagnose: `run_doctor` (every check that explains vanished or stuck jobs, with evidence and a
fix) and `why` (one job, in plain words). Modules: doctor.py (the run), consumers.py + monitor.py
(who pops our keys), shared.py (other apps, key types, namespace), settings_check.py (Redis
settings), workers_check.py (workers, queues, leases, dead letters), why.py, report.py."""

from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.report import Check, DoctorReport, Verdict
from hiveq.diagnose.why import Why, why

__all__ = ["Check", "DoctorReport", "Verdict", "Why", "run_doctor", "why"]
