namespace Covet.Data.Resilience;

/// <summary>
/// Demand-driven sizing between <see cref="CovetPoolOptions.MinPoolSize"/> and <see cref="CovetPoolOptions.MaxPoolSize"/>:
/// above the high-water utilization it grows the warm set by a step so callers do not wait for new physical connections;
/// below the low-water mark, held for a whole <see cref="CovetPoolOptions.ScaleInterval"/>, it lets idle connections go by a
/// step. No two resizes are closer than the interval. Pure decision logic: the pool samples and acts.
/// </summary>
/// <remarks>Only the maintenance tick calls <see cref="Evaluate"/>, and ticks never overlap, so no synchronisation is needed
/// there; <see cref="OnResized"/> (a live reconfiguration) only clamps <see cref="WarmTarget"/>, a single int write.</remarks>
internal sealed class DemandSizer(Pooling.CovetPool pool)
{
    private long _lastResize = long.MinValue;
    private long _lowSince = long.MinValue;

    /// <summary>The size the pool currently keeps warm; idle eviction does not go below it.</summary>
    public int WarmTarget { get; private set; } = pool.Options.MinPoolSize;

    /// <summary>The minimum or maximum changed live: the warm size stays between them.</summary>
    public void OnResized(CovetPoolOptions options) => WarmTarget = Math.Clamp(WarmTarget, options.MinPoolSize, options.MaxPoolSize);

    /// <summary>How many connections to add (positive) or let go (negative) now (<paramref name="now"/> on the pool clock), given the pool's counts.</summary>
    public int Evaluate(long now, int total, int inUse)
    {
        var options = pool.Options; // one consistent set of settings for this decision (a reconfiguration replaces it whole)
        var clock = pool.Clock;
        if (!options.AutoScale)
            return 0;
        var utilization = total == 0 ? (inUse > 0 ? 1.0 : 0.0) : (double)inUse / total;
        var quiet = _lastResize == long.MinValue || clock.Elapsed(_lastResize, now) >= options.ScaleInterval;

        if (utilization >= options.ScaleUpUtilization && total > 0 && total < options.MaxPoolSize)
        {
            _lowSince = long.MinValue;
            if (!quiet)
                return 0;
            var target = Math.Min(options.MaxPoolSize, total + Step(total, options));
            return Resize(now, target, total, options);
        }

        if (utilization < options.ScaleDownUtilization && total > Math.Max(options.MinPoolSize, 0))
        {
            if (_lowSince == long.MinValue)
                _lowSince = now;
            if (!quiet || clock.Elapsed(_lowSince, now) < options.ScaleInterval)
                return 0;
            // Never shrink so far that the current load would cross the high-water mark (that would oscillate).
            var floorForLoad = (int)Math.Floor(inUse / options.ScaleUpUtilization) + 1;
            var target = Math.Max(options.MinPoolSize, Math.Max(floorForLoad, total - Step(total, options)));
            if (target >= total)
                return 0;
            _lowSince = now;
            return Resize(now, target, total, options);
        }

        _lowSince = long.MinValue;
        return 0;
    }

    private static int Step(int total, CovetPoolOptions options) => Math.Max(1, (int)Math.Ceiling(total * options.ScaleStep));

    private int Resize(long now, int target, int total, CovetPoolOptions options)
    {
        _lastResize = now;
        WarmTarget = Math.Max(options.MinPoolSize, target);
        return target - total;
    }
}
