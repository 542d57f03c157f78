"""The soak benchmark (``etl-project bench --soak``): N synthetic districts, two nights each, via the daemon.

One concern per module:

- ``fleet``: the districts (size mix, which fail and how) and what each night should end as
- ``drops``: each night's drops written with the project's generator (and the broken ones)
- ``sources``: registration in the registry, and the sources that fail (unreachable, refused login)
- ``stack``: the Dagster services measured, local (webserver + daemon) or a cluster's (``cluster.json``)
- ``safety_net``: the nightly schedule paused while the soak runs (the sensor path is what is measured)
- ``observe``: runs, lost/duplicated, per-run overhead and drop-to-applied from the instance
- ``outcomes``: each district's observed outcome against the failure injected into it
- ``floor``: the same district-nights one after another in one process (the floor, and the LMS to compare)
- ``lms_rows``: a district's LMS rows as one fingerprint, so districts can be compared across LMSs
- ``history``: the 90 nights of history the UI measurement needs, seeded as materialization events
- ``ui``: the UI's partition and asset pages' GraphQL latency and the sensor's tick durations
- ``kill``: SIGKILL of a worker in the middle of a run, and what became of that run
- ``report``: the JSON written as the soak goes
- ``run``: the soak from start to end
"""
