"""The job runner: claim, generate, upload, complete, and never lose a job.

One module per part, along River's producer / executor / completer split and procrastinate's worker loop:

| module          | part |
|-----------------|------|
| `supervisor.py` | `Runner`: builds the parts, runs the claim loop and the side tasks, stops the worker if one dies; `stop()` |
| `claiming.py`   | **claimed**: the claim loop (producer): claim up to free capacity on NOTIFY, freed slot or poll |
| `executor.py`   | one job, start to end, in its own task: download → generate → upload → complete |
| `generation.py` | **generated**: the backend call with its deadline, throttled progress and call tracking; the PNG checked |
| `upload.py`     | **uploaded**: only while the lease surely holds, under a deadline that renewals move on |
| `completer.py`  | **completed**: one batching writer for the fenced `complete_jobs` |
| `outcomes.py`   | an attempt that did not succeed: fail_job (retry or not), release, or nothing (lease lost) |
| `leases.py`     | lease renewal every `lease_seconds / 3`, and once more when the LISTEN connection comes back |
| `deadlines.py`  | the watchdog that stops a generation or upload past its deadline |
| `cancels.py`    | cancel NOTIFYs (remembered when they beat the claim's answer) and their acknowledgement |
| `faults.py`     | the worker's own faults: hand the job back, pause claiming |
| `shutdown.py`   | drain for the grace period, then release what is left |
| `writes.py`     | final writes retried while the database is unreachable, shielded from cancellation |
| `active.py`     | `ActiveJob` (one held job, shared by all the parts) and the registry of them |

Every write is fenced in SQL by (job id, claim number `Job.claim`; never the attempt, which a requeue or a release
can repeat); Python decides no state transition.
"""

from worker.runner.active import ActiveJob
from worker.runner.supervisor import Runner, make_worker_id

__all__ = ["ActiveJob", "Runner", "make_worker_id"]
