from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from tests.support.worker import submit, until, worker_in_process


async def test_smoke(broker: Broker) -> None:
    enq = await submit(broker, "t.echo", [1, 2, 3])
    async with worker_in_process(broker.settings, ["t.echo"]):
        async def done() -> bool:
            return (await inspect.counts(broker)).get("succeeded") == 3
        await until(done)
    jobs = await inspect.get_jobs(broker, enq.job_ids)
    print([j.result for j in jobs])
