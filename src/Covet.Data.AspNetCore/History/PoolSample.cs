namespace Covet.Data.AspNetCore.History;

/// <summary>
/// One sample of a pool: the counts at that moment and the acquire-time percentiles since the pool started; <c>UnixMs</c> is
/// when, in milliseconds since the Unix epoch on the sampler's clock.
/// </summary>
internal readonly record struct PoolSample(
    long UnixMs, int InUse, int Idle, int Waiting, int Total, int Max, double AcquireP50Ms, double AcquireP99Ms, long AcquireTimeouts);
