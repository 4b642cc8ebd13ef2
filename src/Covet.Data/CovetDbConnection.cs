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
public class CovetDbConnection : DbConnection
{
    private static readonly StateChangeEventArgs ClosedToOpen = new(ConnectionState.Closed, ConnectionState.Open);
    private static readonly StateChangeEventArgs OpenToClosed = new(ConnectionState.Open, ConnectionState.Closed);

    private readonly CovetProviderFactory? _factory; // the Covet factory (DbProviderFactory of this connection)
    private readonly bool _poolIsFixed;               // created by a data source: its pool, never another
    private CovetPool? _pool;                         // fixed when created by a data source; else resolved from the connection string at Open
    private string _connectionString = "";

    // The borrowed physical connection and our ownership token for it (see PooledConnection.Lease).
    private PooledConnection? _slot;
    private long _lease;
    private CovetDbTransaction? _transaction;
    private StateChangeEventHandler? _stateChange;   // own field: an open without handlers may complete on another thread

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
            if (_poolIsFixed || _factory is null)
                throw new InvalidOperationException("This connection belongs to a CovetDataSource; its connection string is the data source's.");
            _connectionString = value ?? "";
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
    public override string ServerVersion => Physical.ServerVersion;

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

    // A known pool decides (null: the provider connection string sets its own timeout); otherwise the factory's default.
    internal int? DefaultCommandTimeout =>
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

    /// <summary>
    /// What the dialect will need to prove that a failure of the command about to run came before the server read it
    /// (<see cref="Providers.ProviderDialect.CaptureBeforeCommand"/>); null when no retry could be allowed anyway: inside
    /// a transaction (a retry elsewhere would run outside it), enlisted in a System.Transactions transaction, or a
    /// dialect that can prove nothing. No I/O.
    /// </summary>
    internal object? CaptureForRetry()
    {
        if (_slot is not { } slot || CurrentTransaction is not null || slot.EnlistedIn is not null || Transaction.Current is not null)
            return null;
        return slot.Pool.Dialect.CaptureBeforeCommand(slot.Physical);
    }

    /// <summary>Whether a failed command provably never reached the server's execution, so it may run on another connection.</summary>
    internal bool NeverReadByServer(object? captured, Exception exception, CancellationToken cancellationToken) =>
        captured is not null && !cancellationToken.IsCancellationRequested && _slot is { } slot && slot.Pool.Dialect.FailedBeforeUserCommand(captured, exception);

    /// <summary>
    /// After <see cref="NeverReadByServer"/>: gives the dead physical connection back (it is destroyed) and takes another
    /// from the same pool, through the usual checkout and its validation; the logical connection stays open. When no other
    /// connection can be had, the logical connection is closed and <paramref name="failure"/> is rethrown unchanged.
    /// </summary>
    internal async ValueTask ReplaceDeadConnectionAsync(System.Runtime.ExceptionServices.ExceptionDispatchInfo failure, bool async, CancellationToken cancellationToken)
    {
        var slot = _slot!;
        var pool = slot.Pool;
        slot.Broken = true; // the server ended the session (the dialect's proof); ObserveError has normally marked it already
        _slot = null;
        pool.Return(slot, _lease, pendingRollback: null);
        try
        {
            var (next, lease) = await pool.AcquireAsync(this, async, cancellationToken).ConfigureAwait(false);
            Attach(next, lease);
        }
        catch (Exception)
        {
            OnStateChange(OpenToClosed);
            failure.Throw();
            throw; // unreachable
        }
    }

    /// <inheritdoc />
    public override void Open()
    {
        var pool = BeginOpen();
        if (!pool.TryAcquireReady(this, out var slot, out var lease))
            (slot, lease) = pool.AcquireAsync(this, async: false, CancellationToken.None).GetAwaiter().GetResult();
        EndOpen(slot, lease);
    }

    /// <inheritdoc />
    public override Task OpenAsync(CancellationToken cancellationToken)
    {
        // Not an async method: a hot idle connection is handed out synchronously without a state machine (the common case
        // of a busy application); everything else (waiting, opening, pinging, resetting) goes through OpenSlowAsync.
        // Errors still arrive as a faulted task, as with an async method.
        try
        {
            var pool = BeginOpen();
            if (cancellationToken.IsCancellationRequested)
                return Task.FromCanceled(cancellationToken);
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
        var (slot, lease) = await pool.AcquireAsync(this, async: true, cancellationToken).ConfigureAwait(false);
        EndOpen(slot, lease);
    }

    private CovetPool BeginOpen()
    {
        if (_slot is not null)
            throw new InvalidOperationException("The connection is already open.");
        return ResolvePool();
    }

    private void EndOpen(PooledConnection slot, long lease)
    {
        Attach(slot, lease);
        OnStateChange(ClosedToOpen);
    }

    /// <summary>The pool checked <paramref name="slot"/> out to this connection (possibly from another thread, before it
    /// completes the task this connection's OpenAsync returned).</summary>
    internal void Attach(PooledConnection slot, long lease)
    {
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
            Close();
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
        var physical = PhysicalForExecution();
        physical.ChangeDatabase(databaseName);
        _slot!.DatabaseChanged = true;
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
    public override void EnlistTransaction(Transaction? transaction) => PhysicalForExecution().EnlistTransaction(transaction);

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
    protected override DbBatch CreateDbBatch() => new CovetDbBatch(this, InnerFactory.CreateBatch(), DefaultCommandTimeout);

    /// <inheritdoc />
    public override DataTable GetSchema() => Physical.GetSchema();

    /// <inheritdoc />
    public override DataTable GetSchema(string collectionName) => Physical.GetSchema(collectionName);

    /// <inheritdoc />
    public override DataTable GetSchema(string collectionName, string?[] restrictionValues) => Physical.GetSchema(collectionName, restrictionValues);

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
        if (string.IsNullOrEmpty(_connectionString))
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
