namespace Covet.Data.AspNetCore.History;

/// <summary>
/// The last <c>capacity</c> samples of one pool, a ring buffer. One writer (the sampler's tick, which never overlaps
/// itself) and any number of readers (requests); a plain lock is enough at one write a second.
/// </summary>
internal sealed class PoolHistory(int capacity)
{
    private readonly Lock _gate = new();
    private readonly PoolSample[] _samples = new PoolSample[capacity];
    private int _next;    // where the next sample goes
    private int _count;

    public int Capacity => _samples.Length;

    public void Add(PoolSample sample)
    {
        lock (_gate)
        {
            _samples[_next] = sample;
            _next = (_next + 1) % _samples.Length;
            if (_count < _samples.Length)
                _count++;
        }
    }

    /// <summary>The samples taken after <paramref name="sinceUnixMs"/>, oldest first.</summary>
    public PoolSample[] Since(long sinceUnixMs)
    {
        lock (_gate)
        {
            var result = new List<PoolSample>(_count);
            var start = (_next - _count + _samples.Length) % _samples.Length;
            for (var i = 0; i < _count; i++)
            {
                var s = _samples[(start + i) % _samples.Length];
                if (s.UnixMs > sinceUnixMs)
                    result.Add(s);
            }
            return [.. result];
        }
    }
}
