namespace Covet.Data.Pooling;

/// <summary>
/// The pool's two clocks. <see cref="Now"/> stamps the checkout path (checkout and return times, idle since, the alive
/// window, lifetimes): on the real clock it is <see cref="Environment.TickCount64"/>, milliseconds that cost ~2 ns to
/// read instead of ~25 ns for <see cref="TimeProvider.GetTimestamp"/>, whose two reads were a fifth of an open → close
/// cycle. <see cref="Precise"/> is the <see cref="TimeProvider"/>'s timestamp, read only where something is waited for or
/// measured finely (acquire deadlines, acquire and create times, sampled use times).
/// </summary>
/// <remarks>
/// <para>What the coarse clock costs in precision, and why it is enough: it counts milliseconds and advances once per
/// kernel tick (1–4 ms on Linux). The alive window (default 500 ms) is then honoured to within one tick; leak thresholds,
/// idle timeout and max lifetime are seconds or minutes. Durations that must be finer are not measured with it: use-time
/// statistics come from checkouts sampled on the precise clock (see <see cref="Diagnostics.PoolStatistics"/>).</para>
/// <para>With any other <see cref="TimeProvider"/> (a fake one in tests) both clocks are that provider's timestamp, so
/// tests drive every time of the pool.</para>
/// </remarks>
internal sealed class PoolClock
{
    public PoolClock(TimeProvider time)
    {
        Time = time;
        IsCoarse = ReferenceEquals(time, TimeProvider.System);
        Frequency = IsCoarse ? 1000 : time.TimestampFrequency;
    }

    public TimeProvider Time { get; }

    /// <summary>Whether <see cref="Now"/> is the millisecond tick count rather than the provider's timestamp.</summary>
    public bool IsCoarse { get; }

    /// <summary>Units of <see cref="Now"/> per second.</summary>
    public long Frequency { get; }

    /// <summary>A timestamp for the checkout path, in units of <see cref="Frequency"/>.</summary>
    public long Now() => IsCoarse ? Environment.TickCount64 : Time.GetTimestamp();

    /// <summary>The provider's precise timestamp (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long Precise() => Time.GetTimestamp();

    /// <summary><paramref name="span"/> in units of <see cref="Now"/>; <see cref="long.MaxValue"/> for an infinite span.</summary>
    public long Units(TimeSpan span) =>
        span == Timeout.InfiniteTimeSpan || span == TimeSpan.MaxValue ? long.MaxValue : (long)(span.Ticks * (Frequency / (double)TimeSpan.TicksPerSecond));

    /// <summary>The time between two <see cref="Now"/> stamps.</summary>
    public TimeSpan Elapsed(long from, long to) =>
        IsCoarse ? TimeSpan.FromMilliseconds(to - from) : Time.GetElapsedTime(from, to);

    /// <summary><paramref name="span"/> in units of <see cref="Precise"/>; <see cref="long.MaxValue"/> for an infinite span.</summary>
    public long PreciseUnits(TimeSpan span) =>
        span == Timeout.InfiniteTimeSpan ? long.MaxValue : (long)(span.Ticks * (Time.TimestampFrequency / (double)TimeSpan.TicksPerSecond));
}
