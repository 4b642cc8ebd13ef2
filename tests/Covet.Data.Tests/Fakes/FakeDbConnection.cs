using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Covet.Data.Tests.Fakes;

/// <summary>
/// One physical connection to a <see cref="FakeServer"/>. Opens, executes and fails as the server is
/// scripted; detects being used by two threads at once (see <see cref="FakeServer.ConcurrentUseViolations"/>).
/// </summary>
public sealed class FakeDbConnection : DbConnection
{
    private const string DefaultDatabase = "fakedb";
    private const int DefaultConnectionTimeoutSeconds = 15;

    private readonly object _sync = new();
    private readonly Dictionary<string, string> _session = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<string> _log = new();
    private readonly FakeDbProviderFactory? _factory;

    private string _connectionString = string.Empty;
    private ConnectionState _state = ConnectionState.Closed;
    private string? _currentDatabase;
    private string? _openedWithConnectionString;
    private FakeDbTransaction? _transaction;
    private FakeDbDataReader? _openReader;
    private System.Transactions.Transaction? _enlistedTransaction;
    private bool _isKilled;
    private bool _isDisposed;
    private int _executing;
    private int _openCount;

    public FakeDbConnection(FakeServer server)
        : this(server, string.Empty)
    {
    }

    public FakeDbConnection(FakeServer server, string? connectionString)
        : this(server, connectionString, factory: null)
    {
    }

    internal FakeDbConnection(FakeServer server, string? connectionString, FakeDbProviderFactory? factory)
    {
        ArgumentNullException.ThrowIfNull(server);
        Server = server;
        _factory = factory;
        ConnectionString = connectionString;
        Id = server.Register(this);
    }

    /// <summary>The server this connection talks to.</summary>
    public FakeServer Server { get; }

    /// <summary>Unique (per server) id, assigned when the object is created; 1, 2, 3, ...</summary>
    public int Id { get; }

    /// <summary>The connection string in force at the last successful open (null if never opened).</summary>
    public string? OpenedWithConnectionString { get { lock (_sync) { return _openedWithConnectionString; } } }

    /// <summary>How many times this object was successfully opened.</summary>
    public int OpenCount { get { lock (_sync) { return _openCount; } } }

    /// <summary>True once the server killed this connection (until it is re-opened).</summary>
    public bool IsKilled { get { lock (_sync) { return _isKilled; } } }

    /// <summary>True once <see cref="System.ComponentModel.Component.Dispose()"/> ran.</summary>
    public bool IsDisposed { get { lock (_sync) { return _isDisposed; } } }

    /// <summary>True while a <see cref="FakeDbTransaction"/> of this connection is active.</summary>
    public bool InTransaction { get { lock (_sync) { return _transaction is not null; } } }

    /// <summary>The active transaction, or null.</summary>
    public FakeDbTransaction? CurrentTransaction { get { lock (_sync) { return _transaction; } } }

    /// <summary>The last value passed to <see cref="EnlistTransaction"/>.</summary>
    public System.Transactions.Transaction? EnlistedTransaction { get { lock (_sync) { return _enlistedTransaction; } } }

    /// <summary>Snapshot of the session variables set with <c>SET</c> (cleared by RESET ALL / DISCARD ALL / reopen).</summary>
    public IReadOnlyDictionary<string, string> SessionVariables
    {
        get { lock (_sync) { return new Dictionary<string, string>(_session, StringComparer.OrdinalIgnoreCase); } }
    }

    /// <summary>Snapshot of the command texts executed on this connection, in order.</summary>
    public IReadOnlyList<string> ExecutedCommands { get { lock (_sync) { return _log.ToArray(); } } }

    [AllowNull]
    public override string ConnectionString
    {
        get { lock (_sync) { return _connectionString; } }
        set
        {
            string newValue = value ?? string.Empty;
            _ = new DbConnectionStringBuilder { ConnectionString = newValue }; // validates the syntax, like real providers
            lock (_sync)
            {
                if (_state != ConnectionState.Closed)
                {
                    throw new InvalidOperationException("fake: the ConnectionString cannot be changed while the connection is open.");
                }

                _connectionString = newValue;
            }
        }
    }

    /// <summary>"Timeout", "Connect Timeout" or "Connection Timeout" key of the connection string; default 15.</summary>
    public override int ConnectionTimeout
    {
        get
        {
            string? value = GetConnectionStringValue("Timeout")
                ?? GetConnectionStringValue("Connect Timeout")
                ?? GetConnectionStringValue("Connection Timeout");
            return value is null ? DefaultConnectionTimeoutSeconds : int.Parse(value, CultureInfo.InvariantCulture);
        }
    }

    /// <summary>The database changed by <see cref="ChangeDatabase"/>, else the "Database" key, else "fakedb".</summary>
    public override string Database
    {
        get
        {
            lock (_sync)
            {
                if (_currentDatabase is not null)
                {
                    return _currentDatabase;
                }
            }

            return GetConnectionStringValue("Database") ?? DefaultDatabase;
        }
    }

    public override string DataSource => "fake";

    /// <summary>"1.0" while open; throws <see cref="InvalidOperationException"/> otherwise.</summary>
    public override string ServerVersion
    {
        get
        {
            lock (_sync)
            {
                if (_state != ConnectionState.Open)
                {
                    throw new InvalidOperationException("fake: Connection is not open.");
                }
            }

            return "1.0";
        }
    }

    public override ConnectionState State { get { lock (_sync) { return _state; } } }

    protected override DbProviderFactory DbProviderFactory => _factory ?? new FakeDbProviderFactory(Server);

    public override void ChangeDatabase(string databaseName)
    {
        ArgumentException.ThrowIfNullOrEmpty(databaseName);
        lock (_sync)
        {
            ThrowIfNotOpen();
            _currentDatabase = databaseName;
        }
    }

    public override void EnlistTransaction(System.Transactions.Transaction? transaction)
    {
        lock (_sync) { _enlistedTransaction = transaction; }
    }

    public override void Open() => OpenCoreAsync(async: false, CancellationToken.None).GetAwaiter().GetResult();

    public override Task OpenAsync(CancellationToken cancellationToken) => OpenCoreAsync(async: true, cancellationToken).AsTask();

    public override void Close()
    {
        if (CloseCore(killed: false))
        {
            OnStateChange(new StateChangeEventArgs(ConnectionState.Open, ConnectionState.Closed));
        }
    }

    protected override DbCommand CreateDbCommand() => new FakeDbCommand { Connection = this };

    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) =>
        BeginCoreAsync(isolationLevel, async: false, CancellationToken.None).GetAwaiter().GetResult();

    protected override async ValueTask<DbTransaction> BeginDbTransactionAsync(IsolationLevel isolationLevel, CancellationToken cancellationToken) =>
        await BeginCoreAsync(isolationLevel, async: true, cancellationToken).ConfigureAwait(false);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close();
            lock (_sync) { _isDisposed = true; }
        }

        base.Dispose(disposing);
    }

    public override string ToString() => $"FakeDbConnection#{Id.ToString(CultureInfo.InvariantCulture)} ({State})";

    // ---- open / close ---------------------------------------------------------------------

    private async ValueTask OpenCoreAsync(bool async, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        string connectionString;
        lock (_sync)
        {
            if (_state == ConnectionState.Connecting)
            {
                Server.OnConcurrentUse();
                throw new InvalidOperationException("fake: connection used concurrently");
            }

            if (_state != ConnectionState.Closed)
            {
                throw new InvalidOperationException("fake: the connection is already open.");
            }

            _state = ConnectionState.Connecting;
            connectionString = _connectionString;
        }

        try
        {
            (bool blackHole, TimeSpan latency, TimeProvider timeProvider) = Server.GetOpenScript();
            if (blackHole)
            {
                await WaitInBlackHoleAsync(ConnectionTimeout, timeProvider, async, FakeDbException.ConnectTimeout, cancellationToken).ConfigureAwait(false);
            }

            await FakeDelay.WaitAsync(latency, timeProvider, async, cancellationToken).ConfigureAwait(false);
            Server.ThrowIfOpenFails(connectionString);
        }
        catch
        {
            lock (_sync) { _state = ConnectionState.Closed; }
            throw;
        }

        lock (_sync)
        {
            _state = ConnectionState.Open;
            _isKilled = false;
            _session.Clear();
            _currentDatabase = null;
            _openedWithConnectionString = connectionString;
            _openCount++;
        }

        Server.OnOpened();
        OnStateChange(new StateChangeEventArgs(ConnectionState.Closed, ConnectionState.Open));
    }

    /// <summary>Open → Closed. Returns false when it was not open (Close is idempotent).</summary>
    private bool CloseCore(bool killed)
    {
        FakeDbDataReader? reader;
        FakeDbTransaction? transaction;
        lock (_sync)
        {
            if (_state != ConnectionState.Open)
            {
                return false;
            }

            _state = ConnectionState.Closed;
            _isKilled |= killed;
            _currentDatabase = null;
            reader = _openReader;
            _openReader = null;
            transaction = _transaction;
            _transaction = null;
        }

        transaction?.MarkCompleted(committed: false);
        reader?.CloseWithoutConnection();
        Server.OnClosed();
        return true;
    }

    internal void MarkKilled()
    {
        lock (_sync)
        {
            if (_state == ConnectionState.Open)
            {
                _isKilled = true;
            }
        }
    }

    /// <summary>Called when a command notices the kill: the connection reports Closed from now on.</summary>
    internal FakeDbException Break()
    {
        lock (_sync) { _isKilled = true; }
        if (CloseCore(killed: true))
        {
            OnStateChange(new StateChangeEventArgs(ConnectionState.Open, ConnectionState.Closed));
        }

        return FakeDbException.AdminShutdown();
    }

    // ---- transactions ---------------------------------------------------------------------

    private async ValueTask<FakeDbTransaction> BeginCoreAsync(IsolationLevel isolationLevel, bool async, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            ThrowIfNotOpen();
            if (_transaction is not null)
            {
                throw new InvalidOperationException("fake: a transaction is already in progress on this connection.");
            }
        }

        await ExecuteAsync("BEGIN", Array.Empty<FakeDbParameter>(), commandTimeoutSeconds: 30, async, cancellationToken).ConfigureAwait(false);

        var transaction = new FakeDbTransaction(this, isolationLevel);
        lock (_sync)
        {
            ThrowIfNotOpen();
            _transaction = transaction;
        }

        return transaction;
    }

    internal void ClearTransaction(FakeDbTransaction transaction)
    {
        lock (_sync)
        {
            if (ReferenceEquals(_transaction, transaction))
            {
                _transaction = null;
            }
        }
    }

    // ---- execution ------------------------------------------------------------------------

    /// <summary>
    /// Runs one command text on this connection: concurrency check, log, kill check, black hole,
    /// latency, then the command language. Shared by <see cref="FakeDbCommand"/> and <see cref="FakeDbTransaction"/>.
    /// </summary>
    internal async ValueTask<FakeResult> ExecuteAsync(
        string commandText,
        IReadOnlyList<FakeDbParameter> parameters,
        int commandTimeoutSeconds,
        bool async,
        CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _executing, 1, 0) != 0)
        {
            Server.OnConcurrentUse();
            throw new InvalidOperationException("fake: connection used concurrently");
        }

        try
        {
            lock (_sync)
            {
                ThrowIfNotOpen();
                _log.Add(commandText);
            }

            Server.Log(commandText);

            // Make executions take a little time so overlapping use is actually observable.
            Thread.SpinWait(50);
            if (async)
            {
                await Task.Yield();
                Thread.SpinWait(50);
            }

            ThrowIfKilled();

            (bool blackHole, TimeSpan latency, TimeProvider timeProvider) = Server.GetCommandScript();
            if (blackHole)
            {
                await WaitInBlackHoleAsync(commandTimeoutSeconds, timeProvider, async, FakeDbException.CommandTimeout, cancellationToken).ConfigureAwait(false);
            }

            await FakeDelay.WaitAsync(latency, timeProvider, async, cancellationToken).ConfigureAwait(false);
            ThrowIfKilled();

            return await FakeCommandInterpreter.RunAsync(this, commandText, parameters, timeProvider, async, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _executing, 0);
        }
    }

    internal void RegisterReader(FakeDbDataReader reader)
    {
        lock (_sync) { _openReader = reader; }
    }

    internal void UnregisterReader(FakeDbDataReader reader)
    {
        lock (_sync)
        {
            if (ReferenceEquals(_openReader, reader))
            {
                _openReader = null;
            }
        }
    }

    internal void SetSessionVariable(string name, string value)
    {
        lock (_sync) { _session[name] = value; }
    }

    internal void ResetSessionVariable(string name)
    {
        lock (_sync) { _session.Remove(name); }
    }

    internal void ClearSession()
    {
        lock (_sync) { _session.Clear(); }
    }

    internal string? GetSessionVariable(string name)
    {
        lock (_sync) { return _session.TryGetValue(name, out string? value) ? value : null; }
    }

    internal void ClearLog()
    {
        lock (_sync) { _log.Clear(); }
    }

    private void ThrowIfKilled()
    {
        bool killed;
        lock (_sync) { killed = _isKilled; }
        if (killed)
        {
            throw Break();
        }
    }

    private void ThrowIfNotOpen()
    {
        if (_state != ConnectionState.Open)
        {
            throw new InvalidOperationException("fake: Connection is not open.");
        }
    }

    /// <summary>
    /// Never completes on its own: async waits for the token; sync waits <paramref name="timeoutSeconds"/>
    /// on the time provider (0 = forever) and then throws the timeout error.
    /// </summary>
    private static async ValueTask WaitInBlackHoleAsync(
        int timeoutSeconds,
        TimeProvider timeProvider,
        bool async,
        Func<FakeDbException> timeoutError,
        CancellationToken cancellationToken)
    {
        if (async || timeoutSeconds <= 0)
        {
            await FakeDelay.WaitAsync(Timeout.InfiniteTimeSpan, timeProvider, async, cancellationToken).ConfigureAwait(false);
            return;
        }

        await FakeDelay.WaitAsync(TimeSpan.FromSeconds(timeoutSeconds), timeProvider, async: false, cancellationToken).ConfigureAwait(false);
        throw timeoutError();
    }

    private string? GetConnectionStringValue(string key)
    {
        var builder = new DbConnectionStringBuilder { ConnectionString = ConnectionString };
        return builder.TryGetValue(key, out object? value) ? Convert.ToString(value, CultureInfo.InvariantCulture) : null;
    }
}
