using System.ComponentModel;
using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using Transaction = System.Transactions.Transaction;
using Covet.Data.Pooling;

namespace Covet.Data;

/// <summary>
/// A logical connection: <see cref="Open"/> borrows a physical connection from Covet's pool and <see cref="Close"/> gives
/// it back. Commands, transactions and batches created from it pass everything through to the provider's own objects.
/// </summary>
/// <remarks>
/// Not thread-safe, like every ADO.NET connection. A connection that is garbage-collected while open does not keep its
/// slot: the pool holds it only through a weak reference, notices at its next maintenance tick that it was collected, takes
/// the physical connection back and reports the leak with the stack trace of the code that opened it.
/// </remarks>
[DesignerCategory("")]
public partial class CovetDbConnection : DbConnection
{
    private static readonly StateChangeEventArgs ClosedToOpen = new(ConnectionState.Closed, ConnectionState.Open);
    private static readonly StateChangeEventArgs OpenToClosed = new(ConnectionState.Open, ConnectionState.Closed);
    private static readonly StateChangeEventArgs ClosedToConnecting = new(ConnectionState.Closed, ConnectionState.Connecting);
    private static readonly StateChangeEventArgs ConnectingToOpen = new(ConnectionState.Connecting, ConnectionState.Open);
    private static readonly StateChangeEventArgs ConnectingToClosed = new(ConnectionState.Connecting, ConnectionState.Closed);

    private readonly CovetProviderFactory? _factory; // the Covet factory (DbProviderFactory of this connection)
    private bool _poolIsFixed;                        // created by a data source: its pool, until a connection string of its own is set
    private CovetPool? _pool;                         // fixed when created by a data source; else resolved from the connection string at Open
    private string _connectionString = "";

    // The borrowed physical connection and our ownership token for it (see PooledConnection.Lease).
    private PooledConnection? _slot;
    private long _lease;
    private CovetDbTransaction? _transaction;
    private StateChangeEventHandler? _stateChange;   // own field: an open without handlers may complete on another thread
    private bool _disposed;


    internal CovetDbConnection(CovetProviderFactory? factory, CovetPool? pool)
    {
        _factory = factory;
        _pool = pool;
        _poolIsFixed = pool is not null;
        if (pool is not null)
            _connectionString = pool.OriginalConnectionString;
        // No finalizer (Component declares one): a forgotten open connection is found by the pool through a weak reference.
        GC.SuppressFinalize(this);
    }

    /// <summary>Creates a closed connection of <paramref name="factory"/> with the given connection string.</summary>
    public CovetDbConnection(CovetProviderFactory factory, string connectionString) : this(factory, (CovetPool?)null) =>
        ConnectionString = connectionString;

    /// <summary>The provider connection string plus Covet's keywords. Cannot be changed while open.</summary>
    [AllowNull]
    public override string ConnectionString
    {
        get => _connectionString;
        set
        {
            if (_slot is not null)
                throw new InvalidOperationException("The connection string cannot be changed while the connection is open.");
            if (_factory is null)
                throw new InvalidOperationException("This connection belongs to a CovetDataSource; its connection string is the data source's.");
            var text = value ?? "";
            // Validated now where the provider validates at set time (its own exception), Covet keywords always.
            if (text.Length > 0)
                _factory.Validate(text);
            // A data source's connection given a string of its own leaves the data source, as the providers' do.
            _poolIsFixed = false;
            _connectionString = text;
            _pool = null;
        }
    }

    /// <inheritdoc />
    public override ConnectionState State => _slot is null ? ConnectionState.Closed : ConnectionState.Open;

    /// <inheritdoc />
    public override string Database => _slot is { } slot ? slot.Physical.Database : TemplateOrNull()?.Database ?? "";

    /// <inheritdoc />
    public override string DataSource => _slot is { } slot ? slot.Physical.DataSource : TemplateOrNull()?.DataSource ?? "";

    /// <inheritdoc />
    public override int ConnectionTimeout => TemplateOrNull()?.ConnectionTimeout ?? 15;

    /// <inheritdoc />
    public override string ServerVersion => _slot is null ? WithClosedProviderConnection(static c => c.ServerVersion) : Physical.ServerVersion;

    /// <summary>The Covet factory (so <c>DbProviderFactories.GetFactory(connection)</c> returns Covet, not the inner provider).</summary>
    protected override DbProviderFactory? DbProviderFactory => _factory ?? _pool?.OwnerFactory;

    /// <summary>
    /// The provider's own open connection, for provider-specific APIs (COPY, LISTEN, type reloading). Session state changed
    /// through it is reset before the next borrower. Do not close or dispose it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The connection is not open.</exception>
    /// <exception cref="CovetConnectionReclaimedException">The pool took the connection back.</exception>
    public DbConnection UnderlyingConnection
    {
        get
        {
            var physical = Physical;
            _slot!.NeedsReset = true;
            return physical;
        }
    }

    /// <summary>Statistics of the pool this connection borrows from (resolving it from the connection string if needed).</summary>
    public CovetPoolStatistics GetPoolStatistics() => PoolIdentity.StatisticsOf(ResolvePool());

    /// <summary>The open physical connection; throws when closed or reclaimed.</summary>
    internal DbConnection Physical
    {
        get
        {
            var slot = _slot ?? throw new InvalidOperationException("Connection is not open.");
            if (Volatile.Read(ref slot.Lease) != _lease)
                throw Reclaimed(slot);
            return slot.Physical;
        }
    }

    /// <summary>The physical connection while open and not reclaimed, else null.</summary>
    internal DbConnection? PhysicalOrNull => _slot is { } slot && Volatile.Read(ref slot.Lease) == _lease ? slot.Physical : null;

    /// <summary>The physical connection for a command about to execute; marks the session as needing a reset when the command may change it.</summary>
    internal DbConnection PhysicalForExecution(string? commandText = null)
    {
        var physical = Physical;
        var slot = _slot!;
        if (!slot.NeedsReset && slot.Pool.Dialect.MayChangeSession(commandText))
            slot.NeedsReset = true;
        return physical;
    }

    internal CovetDbTransaction? CurrentTransaction => _transaction is { IsCompleted: false } t ? t : null;

    /// <summary>The dialect of the pool this connection borrows from, once known.</summary>
    internal Providers.ProviderDialect? Dialect => _pool?.Dialect;

    // What a new command's timeout is: Covet's DefaultCommandTimeout when the user set it (and the provider connection
    // string does not), otherwise what the provider's own connection gives its commands (its default or its connection
    // string's); a connection without a string: the factory's option, or the provider's command default (null).
    internal int? DefaultCommandTimeout =>
        _pool is { } pool ? pool.CommandTimeoutSeconds ?? pool.ProviderCommandTimeout
        : _factory is not null && !string.IsNullOrEmpty(_connectionString) ? ResolvePool() is var p ? p.CommandTimeoutSeconds ?? p.ProviderCommandTimeout : null
        : _factory?.DefaultCommandTimeoutSeconds;

    // Batches: the providers give a batch no connection-derived timeout, so only Covet's option, when set, applies.
    internal int? DefaultBatchTimeout =>
        _pool is { } pool ? pool.CommandTimeoutSeconds
        : _factory is not null && !string.IsNullOrEmpty(_connectionString) ? ResolvePool().CommandTimeoutSeconds
        : _factory?.DefaultCommandTimeoutSeconds;


    /// <summary>A connection-level error was seen while using the physical connection: it must never be re-pooled.</summary>
    internal void ObserveError(Exception exception)
    {
        if (_slot is { } slot && !slot.Broken && slot.Pool.Dialect.IsConnectionLevelError(exception, slot.Physical))
        {
            slot.Broken = true;
            slot.Pool.OnConnectionBroken();
        }
    }

    /// <inheritdoc />
    public override void Open()
    {
        if (_slot is not null && _slot.Pool.Dialect.OpenWhenOpenIsNoOp)
            return;
        var pool = BeginOpen();
        if (pool.TryAcquireReady(this, out var slot, out var lease))
        {
            EndOpen(slot, lease);
            return;
        }
        var connecting = RaiseConnecting(pool);
        try
        {
            (slot, lease) = pool.AcquireAsync(this, async: false, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch when (connecting)
        {
            OnStateChange(ConnectingToClosed);
            throw;
        }
        EndOpen(slot, lease, connecting);
    }

    // MySqlConnector raises Closed→Connecting before it connects and Connecting→Open (or →Closed) after; Covet raises the
    // same pair around a checkout that must wait or open, and both at once for a ready idle connection.
    private bool RaiseConnecting(CovetPool pool)
    {
        if (_stateChange is null || !pool.Dialect.RaisesConnecting)
            return false;
        OnStateChange(ClosedToConnecting);
        return true;
    }

    /// <inheritdoc />
    public override Task OpenAsync(CancellationToken cancellationToken)
    {
        // Not an async method: a hot idle connection is handed out synchronously without a state machine (the common case
        // of a busy application); everything else (waiting, opening, pinging, resetting) goes through OpenSlowAsync.
        // Errors still arrive as a faulted task, as with an async method.
        try
        {
            if (_slot is not null && _slot.Pool.Dialect.OpenWhenOpenIsNoOp)
                return Task.CompletedTask;
            var pool = BeginOpen();
            if (cancellationToken.IsCancellationRequested)
                return pool.Dialect.CancelledOpenThrowsOperationCanceled
                    ? Task.FromException(new OperationCanceledException(cancellationToken))
                    : Task.FromCanceled(cancellationToken);
            if (_stateChange is null)
            {
                // No StateChange handler to raise on the caller's path: the pool may also open this connection from
                // another thread and complete the returned task (a waiting caller then costs one small object).
                return pool.TryAcquireReadyOrWait(this, cancellationToken) ?? OpenSlowAsync(pool, cancellationToken);
            }
            if (!pool.TryAcquireReady(this, out var slot, out var lease))
                return OpenSlowAsync(pool, cancellationToken);
            EndOpen(slot, lease);
            return Task.CompletedTask;
        }
        catch (Exception e)
        {
            return Task.FromException(e);
        }
    }

    private async Task OpenSlowAsync(CovetPool pool, CancellationToken cancellationToken)
    {
        var connecting = RaiseConnecting(pool);
        PooledConnection slot;
        long lease;
        try
        {
            (slot, lease) = await pool.AcquireAsync(this, async: true, cancellationToken).ConfigureAwait(false);
        }
        catch when (connecting)
        {
            OnStateChange(ConnectingToClosed);
            throw;
        }
        EndOpen(slot, lease, connecting);
    }

    private CovetPool BeginOpen()
    {
        if (_slot is not null)
            throw new InvalidOperationException("The connection is already open.");
        if (_disposed && _factory is not null && Providers.ProviderDialect.For(_factory.Inner).OpenAfterDisposeThrows)
            throw new ObjectDisposedException(GetType().Name);
        return ResolvePool();
    }

    private void EndOpen(PooledConnection slot, long lease, bool connecting = false)
    {
        Attach(slot, lease);
        if (_stateChange is not null && slot.Pool.Dialect.ClosesWhenOpenHandlerThrows)
        {
            try
            {
                RaiseOpened(slot, connecting);
            }
            catch
            {
                // Npgsql closes the connection again when a handler of its Open event throws.
                var stateChange = _stateChange;
                _stateChange = null;
                try { Close(); } finally { _stateChange = stateChange; }
                throw;
            }
            return;
        }
        RaiseOpened(slot, connecting);
    }

    private void RaiseOpened(PooledConnection slot, bool connecting)
    {
        if (connecting)
        {
            OnStateChange(ConnectingToOpen);
        }
        else if (_stateChange is not null && slot.Pool.Dialect.RaisesConnecting)
        {
            OnStateChange(ClosedToConnecting);
            OnStateChange(ConnectingToOpen);
        }
        else
        {
            OnStateChange(ClosedToOpen);
        }
    }

    /// <summary>The pool checked <paramref name="slot"/> out to this connection (possibly from another thread, before it
    /// completes the task this connection's OpenAsync returned).</summary>
    internal void Attach(PooledConnection slot, long lease)
    {
        slot.Readers = null; // a reclaimed borrower never closed its readers: they are not this borrower's
        _slot = slot;
        _lease = lease;
    }

    /// <inheritdoc />
    public override event StateChangeEventHandler? StateChange
    {
        add => _stateChange += value;
        remove => _stateChange -= value;
    }

    /// <inheritdoc />
    protected override void OnStateChange(StateChangeEventArgs stateChange) => _stateChange?.Invoke(this, stateChange);

    /// <inheritdoc />
    public override void Close()
    {
        if (_slot is not { } slot)
            return;
        if (Volatile.Read(ref slot.Lease) == _lease) // reclaimed meanwhile: the slot and its readers are someone else's now
            CloseReaders(slot);
        var pendingRollback = CurrentTransaction?.Inner;
        _transaction?.Detach();
        _transaction = null;
        _slot = null;
        slot.Pool.Return(slot, _lease, pendingRollback);
        OnStateChange(OpenToClosed);
    }

    /// <inheritdoc />
    public override Task CloseAsync()
    {
        Close(); // never does I/O on the caller's path
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close();
            _disposed = true;
        }
        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override void ChangeDatabase(string databaseName)
    {
        if (_slot is null)
        {
            WithClosedProviderConnection(c => { c.ChangeDatabase(databaseName); return 0; });
            return;
        }
        var physical = PhysicalForExecution();
        var slot = _slot!;
        slot.DatabaseChanged = true; // never re-pooled: resets do not restore the database everywhere
        if (!slot.Pool.Dialect.ChangeDatabaseReopens)
        {
            physical.ChangeDatabase(databaseName);
            return;
        }
        // Npgsql changes the database by closing and reopening: the same events, and a failed reopen leaves it closed.
        OnStateChange(OpenToClosed);
        try
        {
            physical.ChangeDatabase(databaseName);
        }
        catch
        {
            var stateChange = _stateChange;
            _stateChange = null; // the Open→Closed event was raised already
            try { Close(); } finally { _stateChange = stateChange; }
            throw;
        }
        OnStateChange(ClosedToOpen);
    }

    /// <inheritdoc />
    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel)
    {
        var physical = PhysicalForExecution(""); // a transaction left open is rolled back on Close regardless
        if (CurrentTransaction is not null)
            throw new InvalidOperationException("A transaction is already in progress; nested transactions are not supported.");
        try
        {
            return _transaction = new CovetDbTransaction(this, physical.BeginTransaction(isolationLevel));
        }
        catch (Exception e)
        {
            ObserveError(e);
            throw;
        }
    }

    /// <inheritdoc />
    protected override async ValueTask<DbTransaction> BeginDbTransactionAsync(IsolationLevel isolationLevel, CancellationToken cancellationToken)
    {
        var physical = PhysicalForExecution("");
        if (CurrentTransaction is not null)
            throw new InvalidOperationException("A transaction is already in progress; nested transactions are not supported.");
        try
        {
            return _transaction = new CovetDbTransaction(this, await physical.BeginTransactionAsync(isolationLevel, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e)
        {
            ObserveError(e);
            throw;
        }
    }

    /// <inheritdoc />
    public override void EnlistTransaction(Transaction? transaction)
    {
        if (_slot is null)
            WithClosedProviderConnection(c => { c.EnlistTransaction(transaction); return 0; });
        else
            PhysicalForExecution().EnlistTransaction(transaction);
    }

    /// <inheritdoc />
    protected override DbCommand CreateDbCommand()
    {
        // Always a fresh provider command, never the physical connection's: Npgsql recycles the command a connection
        // created when it is disposed, and a command disposed after its logical connection closed would then reach the
        // next borrower's command.
        var inner = InnerFactory.CreateCommand() ?? throw new NotSupportedException("The provider cannot create commands.");
        return new CovetDbCommand(this, inner, DefaultCommandTimeout);
    }

    /// <inheritdoc />
    public override bool CanCreateBatch => InnerFactory.CanCreateBatch;

    /// <inheritdoc />
    protected override DbBatch CreateDbBatch() => new CovetDbBatch(this, InnerFactory.CreateBatch(), DefaultBatchTimeout);

    /// <inheritdoc />
    public override DataTable GetSchema() => _slot is null ? WithClosedProviderConnection(static c => c.GetSchema()) : Physical.GetSchema();

    /// <inheritdoc />
    public override DataTable GetSchema(string collectionName) =>
        _slot is null ? WithClosedProviderConnection(c => c.GetSchema(collectionName)) : Physical.GetSchema(collectionName);

    /// <inheritdoc />
    public override DataTable GetSchema(string collectionName, string?[] restrictionValues) =>
        _slot is null ? WithClosedProviderConnection(c => c.GetSchema(collectionName, restrictionValues)) : Physical.GetSchema(collectionName, restrictionValues);


    /// <summary>Closes every idle physical connection of this connection's pool; borrowed ones close when returned.</summary>
    public static void ClearPool(CovetDbConnection connection) => connection.ResolvePool().Clear();

    /// <summary>Closes every idle physical connection of every Covet pool in the process; borrowed ones close when returned.</summary>
    public static void ClearAllPools()
    {
        foreach (var pool in CovetPoolRegistry.Snapshot())
            pool.Clear();
    }

    internal DbProviderFactory InnerFactory => _pool?.InnerFactory ?? _factory?.Inner ?? throw new InvalidOperationException("The connection has no provider.");

    internal CovetPool ResolvePool()
    {
        if (_pool is { IsDisposed: false } pool)
            return pool;
        if (_poolIsFixed)
            throw new ObjectDisposedException(nameof(CovetDataSource), "The data source of this connection has been disposed.");
        if (string.IsNullOrEmpty(_connectionString) && !Providers.ProviderDialect.For(_factory!.Inner).OpensWithoutConnectionString)
            throw new InvalidOperationException("The ConnectionString property has not been initialized.");
        return _pool = _factory!.GetPool(_connectionString);
    }

    private DbConnection? TemplateOrNull()
    {
        if (_pool is { } pool)
            return pool.Template;
        if (string.IsNullOrEmpty(_connectionString) || _factory is null || _poolIsFixed)
            return null;
        return ResolvePool().Template;
    }

    private static CovetConnectionReclaimedException Reclaimed(PooledConnection slot) =>
        new($"Pool '{slot.Pool.Name}' reclaimed this connection: it was held longer than MaxCheckoutDuration " +
            $"({slot.Pool.Options.MaxCheckoutDuration.TotalSeconds:F0} s, Covet.MaxCheckoutDuration) or the pool was disposed. " +
            "Close connections promptly (a using block), or raise MaxCheckoutDuration for long-running work.")
        { PoolName = slot.Pool.Name };
}
