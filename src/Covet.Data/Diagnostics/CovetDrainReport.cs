namespace Covet.Data;

/// <summary>
/// What <see cref="CovetDataSource.DrainAsync"/> did to one pool: how many physical connections it closed, whether every
/// one was closed before the timeout, and the checkouts still borrowed when it ended (closed later, when returned).
/// </summary>
/// <param name="PoolName">The pool's name (never contains a password).</param>
/// <param name="Closed">Physical connections closed while the drain ran (idle ones at once, borrowed ones as they came back).</param>
/// <param name="Completed">True when no physical connection of the pool was left when the drain ended; false when it timed out.</param>
/// <param name="Stragglers">The checkouts still borrowed when the drain ended, longest first, with how long each has been
/// held, its thread and the stack trace of the code that opened it (null when none was captured, see
/// <see cref="CovetPoolOptions.LeakStackTraces"/>). Empty when <paramref name="Completed"/> is true.</param>
public sealed record CovetDrainReport(string PoolName, int Closed, bool Completed, IReadOnlyList<CovetCheckoutInfo> Stragglers);
