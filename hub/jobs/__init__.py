"""Background work: queue primitives (`queue`), every Dramatiq actor in one table (`actors`), the
`hub worker` process (`worker`) and the time-driven jobs of `hub tick` (`tick`)."""
