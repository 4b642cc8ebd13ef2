namespace Covet.Data.Pooling;

/// <summary>
/// The idle connections of one pool, hot on top: a LIFO stack, so the connections a busy application keeps using stay
/// warm and the coldest sink to the bottom, where idle timeout and max lifetime retire them.
/// </summary>
/// <remarks>
/// Contract: not thread-safe. Every member is called under the owning pool's lock (<see cref="CovetPool.Gate"/>), which
/// also guards each connection's <see cref="PooledConnection.State"/> as it moves in and out. The array grows on demand
/// (most pools of a many-tenant application never hold more than a few connections) and never past the pool's maximum.
/// </remarks>
internal sealed class IdleConnectionStack
{
    private PooledConnection[] _items = [];
    private int _count;

    /// <summary>Idle connections. Read without the lock only as a hint (a racy read may be stale).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The top (most recently returned) connection, or null. Not removed.</summary>
    public PooledConnection? Peek() => _count == 0 ? null : _items[_count - 1];

    /// <summary>Takes the top connection and marks it in use.</summary>
    public PooledConnection Pop()
    {
        var top = _items[--_count];
        _items[_count] = null!;
        top.State = SlotState.InUse;
        return top;
    }

    /// <summary>Puts a connection on top and marks it idle since <paramref name="now"/>.</summary>
    public void Push(PooledConnection connection, long now)
    {
        if (_count == _items.Length)
            Array.Resize(ref _items, Math.Max(4, _items.Length * 2));
        connection.State = SlotState.Idle;
        connection.IdleSince = now;
        _items[_count++] = connection;
    }

    /// <summary>
    /// Takes out, coldest (bottom) first, every connection <paramref name="take"/> says yes to, keeping the others in order;
    /// the taken ones are marked in use (their caller closes, tests or hands them on).
    /// </summary>
    public List<PooledConnection> TakeWhere<TState>(ref TState state, Visit<TState, bool> take)
    {
        List<PooledConnection> taken = [];
        var kept = 0;
        for (var i = 0; i < _count; i++)
        {
            var c = _items[i];
            if (take(c, ref state))
            {
                c.State = SlotState.InUse;
                taken.Add(c);
            }
            else
            {
                _items[kept++] = c;
            }
        }
        Array.Clear(_items, kept, _count - kept);
        _count = kept;
        return taken;
    }

    /// <summary>Calls <paramref name="visit"/> for each idle connection, bottom first, without taking any.</summary>
    public void ForEach<TState>(ref TState state, Visit<TState, bool> visit)
    {
        for (var i = 0; i < _count; i++)
            visit(_items[i], ref state);
    }

    /// <summary>A look at one idle connection, with state the caller threads through the walk (no closure allocated).</summary>
    public delegate TResult Visit<TState, out TResult>(PooledConnection connection, ref TState state);
}
