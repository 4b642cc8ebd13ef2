namespace Covet.Data.Tests.Fakes;

/// <summary>
/// The shared, thread-safe state of the fake "database server". Tests script it (latency, failures,
/// kills, black holes) and inspect it (connection counters, command log, concurrency violations).
/// Every member is safe to use from any thread.
/// </summary>
public sealed class FakeServer
{
    private readonly object _gate = new();
    private readonly List<FakeDbConnection> _connections = new();
    private readonly List<string> _log = new();

    private int _nextConnectionId;
    private int _openConnections;
    private int _totalOpened;
    private int _totalClosed;
    private int _peakOpenConnections;
    private int _concurrentUseViolations;
    private int _totalCommands;

    private TimeSpan _openLatency;
    private TimeSpan _commandLatency;
    private TimeProvider _timeProvider = TimeProvider.System;
    private int _failNextOpens;
    private bool _refuseConnections;
    private bool _blackHole;
    private Func<string, Exception?>? _openFailureFactory;

    // ---- counters -------------------------------------------------------------------------

    /// <summary>Physical connections currently in the <see cref="System.Data.ConnectionState.Open"/> state.</summary>
    public int OpenConnections { get { lock (_gate) { return _openConnections; } } }

    /// <summary>Successful opens since the server was created.</summary>
    public int TotalOpened { get { lock (_gate) { return _totalOpened; } } }

    /// <summary>Open→Closed transitions (explicit Close/Dispose, or a kill noticed by a command).</summary>
    public int TotalClosed { get { lock (_gate) { return _totalClosed; } } }

    /// <summary>Highest value <see cref="OpenConnections"/> has ever reached.</summary>
    public int PeakOpenConnections { get { lock (_gate) { return _peakOpenConnections; } } }

    /// <summary>How many times two threads used the same physical connection at once (each also threw).</summary>
    public int ConcurrentUseViolations { get { lock (_gate) { return _concurrentUseViolations; } } }

    /// <summary>Number of command executions attempted (the length of the log, ignoring <see cref="ClearLog"/>).</summary>
    public int TotalCommands { get { lock (_gate) { return _totalCommands; } } }

    // ---- script ---------------------------------------------------------------------------

    /// <summary>Clock for every delay of the fake (latencies, SLEEP, sync timeouts).</summary>
    public TimeProvider TimeProvider
    {
        get { lock (_gate) { return _timeProvider; } }
        set { ArgumentNullException.ThrowIfNull(value); lock (_gate) { _timeProvider = value; } }
    }

    /// <summary>If positive, every open waits this long on <see cref="TimeProvider"/> before completing (or failing).</summary>
    public TimeSpan OpenLatency
    {
        get { lock (_gate) { return _openLatency; } }
        set { lock (_gate) { _openLatency = value; } }
    }

    /// <summary>If positive, every command execution waits this long on <see cref="TimeProvider"/>.</summary>
    public TimeSpan CommandLatency
    {
        get { lock (_gate) { return _commandLatency; } }
        set { lock (_gate) { _commandLatency = value; } }
    }

    /// <summary>The next N opens fail with a transient <see cref="FakeDbException"/> (08001, "fake: cannot connect"). Decremented per failed open.</summary>
    public int FailNextOpens
    {
        get { lock (_gate) { return _failNextOpens; } }
        set { lock (_gate) { _failNextOpens = value; } }
    }

    /// <summary>While true every open fails with a transient <see cref="FakeDbException"/> (08001, "fake: cannot connect").</summary>
    public bool RefuseConnections
    {
        get { lock (_gate) { return _refuseConnections; } }
        set { lock (_gate) { _refuseConnections = value; } }
    }

    /// <summary>
    /// While true, opens and command executions never complete: async calls wait until their
    /// CancellationToken (or, for commands, <see cref="System.Data.Common.DbCommand.Cancel"/>) fires;
    /// sync calls wait ConnectionTimeout / CommandTimeout seconds on <see cref="TimeProvider"/> and then
    /// throw <see cref="FakeDbException"/> "fake: timeout" (0 seconds = wait forever).
    /// An operation that entered the black hole stays in it even if the flag is cleared later.
    /// </summary>
    public bool BlackHole
    {
        get { lock (_gate) { return _blackHole; } }
        set { lock (_gate) { _blackHole = value; } }
    }

    /// <summary>
    /// Optional hook called on every open (after latency) with the connection string; a non-null
    /// result is thrown as the open's failure.
    /// </summary>
    public Func<string, Exception?>? OpenFailureFactory
    {
        get { lock (_gate) { return _openFailureFactory; } }
        set { lock (_gate) { _openFailureFactory = value; } }
    }

    // ---- inspection -----------------------------------------------------------------------

    /// <summary>Snapshot of every command text executed on any connection, in order (including BEGIN/COMMIT/ROLLBACK).</summary>
    public IReadOnlyList<string> ExecutedCommands { get { lock (_gate) { return _log.ToArray(); } } }

    /// <summary>Snapshot of every <see cref="FakeDbConnection"/> ever created for this server, in creation order.</summary>
    public FakeDbConnection[] Connections { get { lock (_gate) { return _connections.ToArray(); } } }

    /// <summary>Empties <see cref="ExecutedCommands"/> (and each connection's own log).</summary>
    public void ClearLog()
    {
        FakeDbConnection[] connections;
        lock (_gate)
        {
            _log.Clear();
            connections = _connections.ToArray();
        }

        foreach (FakeDbConnection connection in connections)
        {
            connection.ClearLog();
        }
    }

    // ---- kills ----------------------------------------------------------------------------

    /// <summary>
    /// Server-side kill of every currently open connection: each one's next command (or transaction
    /// command) throws <see cref="FakeDbException"/> 57P01 and the connection becomes Closed.
    /// </summary>
    public void KillAll()
    {
        foreach (FakeDbConnection connection in Connections)
        {
            connection.MarkKilled();
        }
    }

    /// <summary>Server-side kill of one connection (no effect unless it is open).</summary>
    public void Kill(FakeDbConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        connection.MarkKilled();
    }

    // ---- plumbing used by the fake provider ------------------------------------------------

    internal int Register(FakeDbConnection connection)
    {
        lock (_gate)
        {
            _connections.Add(connection);
            return ++_nextConnectionId;
        }
    }

    internal (bool BlackHole, TimeSpan Latency, TimeProvider TimeProvider) GetOpenScript()
    {
        lock (_gate) { return (_blackHole, _openLatency, _timeProvider); }
    }

    internal (bool BlackHole, TimeSpan Latency, TimeProvider TimeProvider) GetCommandScript()
    {
        lock (_gate) { return (_blackHole, _commandLatency, _timeProvider); }
    }

    /// <summary>Throws the scripted open failure, if any.</summary>
    internal void ThrowIfOpenFails(string connectionString)
    {
        Func<string, Exception?>? factory;
        lock (_gate)
        {
            if (_refuseConnections)
            {
                throw FakeDbException.CannotConnect();
            }

            if (_failNextOpens > 0)
            {
                _failNextOpens--;
                throw FakeDbException.CannotConnect();
            }

            factory = _openFailureFactory;
        }

        Exception? failure = factory?.Invoke(connectionString);
        if (failure is not null)
        {
            throw failure;
        }
    }

    internal void OnOpened()
    {
        lock (_gate)
        {
            _openConnections++;
            _totalOpened++;
            if (_openConnections > _peakOpenConnections)
            {
                _peakOpenConnections = _openConnections;
            }
        }
    }

    internal void OnClosed()
    {
        lock (_gate)
        {
            _openConnections--;
            _totalClosed++;
        }
    }

    internal void OnConcurrentUse()
    {
        lock (_gate) { _concurrentUseViolations++; }
    }

    internal void Log(string commandText)
    {
        lock (_gate)
        {
            _log.Add(commandText);
            _totalCommands++;
        }
    }
}
