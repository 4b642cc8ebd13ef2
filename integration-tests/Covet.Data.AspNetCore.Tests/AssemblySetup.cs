// Every test reads the process-wide pool list (CovetPools): nothing in this assembly runs in parallel.
[assembly: DoNotParallelize]
