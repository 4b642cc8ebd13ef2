using System.Data.Common;
using System.Runtime.CompilerServices;
using System.Transactions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// One context's use of Covet (a scoped service of the context's internal service provider): for the duration of each
/// open that EF manages it borrows a physical connection from Covet and hands EF the provider's own connection object.
/// </summary>
/// <remarks>
/// <para>The flow. EF's <c>RelationalConnection.Open</c> raises <c>ConnectionOpening</c> while its open count is 0. We
/// borrow a <see cref="CovetDbConnection"/>, take its <see cref="CovetDbConnection.UnderlyingConnection"/> (the provider's
/// own, already open <c>NpgsqlConnection</c>, <c>SqliteConnection</c>, <c>MySqlConnection</c>), put it in EF's place
/// (not owned, so EF never closes or disposes it itself) and suppress EF's open. EF then only ever sees the provider's
/// connection type, so every cast, type mapping, parameter and data reader of the provider works. <c>ConnectionClosing</c>
/// (count back to 0) suppresses EF's close, puts EF's own connection object back and closes the Covet connection, which
/// returns the physical connection to the pool (or parks it while it is enlisted in a transaction).</para>
/// <para>Where physical connections come from. Usually from the provider's factory and EF's connection string (one Covet
/// pool per connection string). When the provider creates its connections from a <see cref="DbDataSource"/> (EF Npgsql
/// with <c>MapEnum</c>, plugins or <c>ConfigureDataSource</c>), from that data source, through a
/// <see cref="CovetDataSource"/> over it, so its type mappings and plugins are on every physical connection. A data
/// source EF built is copied unpooled by EF's own code (<see cref="UnpooledProviderDataSource"/>), and Covet pools over
/// the copy (<see cref="CovetEfDataSources"/>), so Covet is the only pool while EF's data source and connection string stay
/// as configured; one the application gave EF is pooled over as it is, and must not pool itself.</para>
/// <para>Lifetime. A context disposed (or returned to an <c>AddDbContextPool</c> pool) while open gives the connection back
/// here (<see cref="Dispose"/>, <see cref="IResettableService.ResetState"/>), after letting EF roll back a transaction it
/// still has. Nothing but the context references this object, so a context that is neither closed nor disposed lets the
/// <see cref="CovetDbConnection"/> be collected: the pool's leak watch finds its weak reference empty, recovers the slot
/// and logs the leak with the stack trace of the open; one held past the leak threshold is reported while it is still held.</para>
/// <para>What is left alone: a connection the application gave EF (<c>UseNpgsql(connection)</c>,
/// <c>Database.SetDbConnection</c>), and EF's secondary connections (Npgsql's admin and unpooled clones, SQLite's
/// read-only connection, MySQL's server-level connection), which EF creates and opens for database creation and
/// existence checks.</para>
/// </remarks>
internal sealed class CovetContextConnection : IResettableService, IDisposable, IAsyncDisposable
{
    // Context → its state, for events raised while the context is disposed (its service provider then throws).
    private static readonly ConditionalWeakTable<DbContext, CovetContextConnection> ByContext = new();

    private readonly RelationalConnection? _relational;
    private readonly CovetPoolOptionsExtension _extension;
    private readonly IDbContextOptions _options;
    private readonly IServiceProvider _services;
    private readonly CovetEfDataSources _efDataSources;
    private readonly DbConnection? _applicationConnection;
    private ProviderConnectionSetup? _setup;

    // Where the borrows come from: a Covet factory (over the provider's factory) or a Covet data source (over the
    // provider's data source), whichever the context's connections come from; the other pair is null.
    private CovetProviderFactory? _factory;
    private DbProviderFactory? _inner;
    private CovetDataSource? _covetSource;
    private DbDataSource? _providerSource;
    private CovetDbConnection? _covet;   // reused by every borrow of this context, from the current source
    private DbConnection? _checkedOriginal; // EF's connection object last checked for callbacks

    // The current borrow.
    private bool _borrowed;
    private DbConnection? _physical;
    private DbConnection? _original;
    private bool _originalOwned;
    private Transaction? _enlistedByCovet; // the ambient transaction Covet's checkout enlisted the borrow in

    public CovetContextConnection(
        IRelationalConnection relationalConnection,
        IDbContextOptions options,
        ICurrentDbContext currentContext,
        IServiceProvider services,
        CovetEfDataSources efDataSources)
    {
        ByContext.AddOrUpdate(currentContext.Context, this);
        _relational = relationalConnection as RelationalConnection;
        _options = options;
        _services = services;
        _efDataSources = efDataSources;
        _extension = options.FindExtension<CovetPoolOptionsExtension>()
                     ?? throw new InvalidOperationException("The context's options have no CovetPoolOptionsExtension.");
        _applicationConnection = options.Extensions.OfType<RelationalOptionsExtension>().FirstOrDefault()?.Connection;
    }

    /// <summary>The state of <paramref name="context"/>, if it was created.</summary>
    public static CovetContextConnection? Find(DbContext context) => ByContext.TryGetValue(context, out var state) ? state : null;

    /// <summary>Whether a physical connection of Covet is EF's connection right now.</summary>
    public bool IsBorrowed => _borrowed;

    /// <summary>Whether this context's connections are pooled by Covet (EF creates them, from a connection string or a data source).</summary>
    public bool IsPooledContext
    {
        get
        {
            if (_relational is not { } relational)
                return false;
            if (_borrowed)
                return true;
            var current = RelationalConnectionAccess.Current(relational) ?? relational.DbConnection;
            return RelationalConnectionAccess.IsOwned(relational) && !ReferenceEquals(current, _applicationConnection);
        }
    }

    /// <summary>Whether <paramref name="bound"/> is EF's own connection object and <paramref name="current"/> the physical connection that replaces it.</summary>
    public bool IsBorrowedFor(DbConnection bound, DbConnection current) =>
        _borrowed && ReferenceEquals(current, _physical) && ReferenceEquals(bound, _original);

    /// <summary>The Covet connection this context borrows through (after its first pooled open).</summary>
    public CovetDbConnection? CovetConnection => _covet;

    /// <summary>Handles EF's ConnectionOpening. True: the connection is open and EF must not open it.</summary>
    public async ValueTask<bool> TryBorrowAsync(ConnectionEventData eventData, bool async, CancellationToken cancellationToken)
    {
        if (_relational is not { } relational)
            throw new NotSupportedException(
                $"The provider's IRelationalConnection ({eventData.Context?.GetService<IRelationalConnection>().GetType().FullName}) does not derive " +
                "from EF Core's RelationalConnection, so Covet cannot give it a pooled connection. Remove UseCovetPool for this context.");

        DbConnection? stale = null;
        if (_borrowed)
        {
            var held = RelationalConnectionAccess.Current(relational);
            if (ReferenceEquals(eventData.Connection, _physical))
            {
                // EF opens our physical connection again: it died and EF saw it closed, so its Close raised no
                // ConnectionClosing. Give it back (the pool sees it is not open and destroys it); a new one follows.
                stale = _physical;
                Release(restoreOriginal: ReferenceEquals(held, stale));
            }
            else if (!ReferenceEquals(held, _physical) && ReferenceEquals(eventData.Connection, held))
            {
                // The application replaced EF's connection (SetDbConnection) while ours was in place.
                Release(restoreOriginal: false);
            }
            else
            {
                return false; // a secondary connection (admin, clone, read-only) opening while ours is borrowed
            }
        }

        var connection = RelationalConnectionAccess.Current(relational);
        if (connection is null)
            return false;
        if (!ReferenceEquals(connection, eventData.Connection) && !(stale is not null && ReferenceEquals(eventData.Connection, stale)))
            return false; // one of EF's secondary connections
        if (!RelationalConnectionAccess.IsOwned(relational) || ReferenceEquals(connection, _applicationConnection))
            return false; // the application's own connection object

        var setup = _setup ??= ProviderConnectionSetup.For(relational);
        CovetDbConnection covet;
        if (setup.FindDataSource(relational) is { } dataSource)
        {
            // The data source sets up its connections (mappings, plugins, callbacks): Covet's come from it too.
            covet = GetCovetConnection(dataSource);
        }
        else
        {
            if (!ReferenceEquals(connection, _checkedOriginal))
            {
                if (ProviderConnectionSetup.CallbacksSetOn(connection) is { Count: > 0 } callbacks)
                    throw CallbacksNotSupported(connection, callbacks);
                _checkedOriginal = connection;
            }
            covet = GetCovetConnection(connection, relational);
        }
        var suppressAmbient = Transaction.Current is not null
                              && (!setup.SupportsAmbientTransactions(relational) || relational.CurrentAmbientTransaction is null);
        if (suppressAmbient)
        {
            // EF does not enlist this connection (the provider cannot, or the connection string says Enlist=false),
            // so Covet must not either: SqliteConnection.EnlistTransaction throws NotSupportedException.
            using var scope = new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled);
            await OpenAsync(covet, async, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await OpenAsync(covet, async, cancellationToken).ConfigureAwait(false);
        }

        DbConnection physical;
        try
        {
            physical = covet.UnderlyingConnection;
            setup.Initialize(relational, physical);
        }
        catch
        {
            covet.Close();
            throw;
        }

        _original = connection;
        _originalOwned = true;
        _physical = physical;
        _enlistedByCovet = suppressAmbient ? null : Transaction.Current;
        _borrowed = true;
        RelationalConnectionAccess.Swap(relational, physical, owned: false);
        return true;
    }

    /// <summary>Handles EF's ConnectionClosing and ConnectionDisposing. True: the connection went back to Covet and EF must not close it.</summary>
    public bool TryReturn(ConnectionEventData eventData)
    {
        if (!_borrowed || !ReferenceEquals(eventData.Connection, _physical))
            return false;
        Release(restoreOriginal: ReferenceEquals(RelationalConnectionAccess.Current(_relational!), _physical));
        return true;
    }

    /// <summary>Closes idle physical connections of this context's pool (borrowed ones close when they come back).</summary>
    public void ClearPool()
    {
        if (_relational is not { } relational)
            return;
        if ((_setup ??= ProviderConnectionSetup.For(relational)).FindDataSource(relational) is { } dataSource)
        {
            CovetSourceOver(dataSource, create: false)?.Clear();
            return;
        }
        var connection = _borrowed ? _original : RelationalConnectionAccess.Current(relational) ?? relational.DbConnection;
        if (connection is null || DbProviderFactories.GetFactory(connection) is not { } inner)
            return;
        var factory = CovetEfPools.FindFactory(inner, _extension.Key);
        if (factory is not null && ConnectionStringOf(relational, connection) is { Length: > 0 } connectionString)
            factory.ClearPool(connectionString);
    }

    /// <summary>Statistics of this context's pool, or null when the context does not borrow from Covet.</summary>
    public CovetPoolStatistics? GetStatistics()
    {
        if (_covet is { } covet)
            return covet.GetPoolStatistics();
        if (_relational is not { } relational)
            return null;
        var connection = RelationalConnectionAccess.Current(relational) ?? relational.DbConnection;
        if (!RelationalConnectionAccess.IsOwned(relational) || ReferenceEquals(connection, _applicationConnection))
            return null;
        if ((_setup ??= ProviderConnectionSetup.For(relational)).FindDataSource(relational) is not { } dataSource)
            return GetCovetConnection(connection, relational).GetPoolStatistics();
        try
        {
            return GetCovetConnection(dataSource).GetPoolStatistics();
        }
        catch (NotSupportedException)
        {
            return null; // a data source that pools itself: not pooled by Covet (its first open says why)
        }
    }

    void IResettableService.ResetState() => ReleaseAtEndOfUse();

    Task IResettableService.ResetStateAsync(CancellationToken cancellationToken) => ReleaseAtEndOfUseAsync().AsTask();

    public void Dispose() => ReleaseAtEndOfUse();

    public ValueTask DisposeAsync() => ReleaseAtEndOfUseAsync();

    private void ReleaseAtEndOfUse()
    {
        if (!_borrowed)
            return;
        // A transaction EF began is still open on the physical connection: EF rolls it back first (its Dispose closes
        // the connection it opened, which comes back through TryReturn), so the pool never gets it mid-transaction.
        if (_relational?.CurrentTransaction is { } transaction)
        {
            try
            {
                transaction.Dispose();
            }
            catch (Exception)
            {
                // A dead connection cannot roll back; the pool destroys it.
            }
        }
        if (_borrowed)
            Release(restoreOriginal: ReferenceEquals(RelationalConnectionAccess.Current(_relational!), _physical));
    }

    private async ValueTask ReleaseAtEndOfUseAsync()
    {
        if (!_borrowed)
            return;
        if (_relational?.CurrentTransaction is { } transaction)
        {
            try
            {
                await transaction.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // A dead connection cannot roll back; the pool destroys it.
            }
        }
        if (_borrowed)
            Release(restoreOriginal: ReferenceEquals(RelationalConnectionAccess.Current(_relational!), _physical));
    }

    /// <summary>Ends the borrow: EF's own connection object back in its place (if ours is still there), the physical one back to Covet.</summary>
    private void Release(bool restoreOriginal)
    {
        var covet = _covet!;
        if (restoreOriginal)
            RelationalConnectionAccess.Swap(_relational!, _original, _originalOwned);
        var enlistedByCovet = _enlistedByCovet;
        _borrowed = false;
        _physical = null;
        _original = null;
        _enlistedByCovet = null;

        // Opened before a TransactionScope and closed inside it: EF enlisted the physical connection in that transaction
        // (HandleAmbientTransactions, on its next open) without Covet knowing, so the pool would hand a connection in the
        // middle of someone else's transaction to its next borrower. It stays out of the pool until the transaction
        // completes. (A connection Covet's checkout enlisted is parked by the pool itself.)
        if (Transaction.Current is { } ambient && !ambient.Equals(enlistedByCovet) && IsActive(ambient)
            && _setup is { } setup && setup.SupportsAmbientTransactions(_relational!) && _relational!.CurrentAmbientTransaction is not null)
        {
            _covet = null; // the next borrow gets a logical connection of its own
            ParkUntilCompleted(covet, ambient);
            return;
        }
        covet.Close();
    }

    private static void ParkUntilCompleted(CovetDbConnection covet, Transaction transaction)
    {
        var closed = 0;
        void CloseOnce()
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
                covet.Close();
        }
        transaction.TransactionCompleted += (_, _) => CloseOnce();
        if (!IsActive(transaction))
            CloseOnce(); // completed before the handler was attached
    }

    private static bool IsActive(Transaction transaction)
    {
        try
        {
            return transaction.TransactionInformation.Status == TransactionStatus.Active;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// After EF created or migrated the schema: the provider reloads its cache of the database's types (Npgsql loads
    /// enums, extensions and ranges once per connection string, with <c>ReloadTypes</c>), and the pool is cleared so
    /// connections opened before the change are replaced by ones that know the new types.
    /// </summary>
    public async ValueTask RefreshAfterSchemaChangeAsync(bool async, CancellationToken cancellationToken)
    {
        if (!IsPooledContext || _relational is not { } relational)
            return;
        using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
        {
            if (async)
                await relational.OpenAsync(cancellationToken).ConfigureAwait(false);
            else
                relational.Open();
            try
            {
                await ProviderConnectionSetup.ReloadTypesAsync(relational.DbConnection, async, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (async)
                    await relational.CloseAsync().ConfigureAwait(false);
                else
                    relational.Close();
            }
        }
        ClearPool();

        // EF Npgsql's creator, after creating enums, extensions or ranges, opens EF's own connection object directly to
        // reload types (NpgsqlDatabaseCreator.CreateTables): from the data source EF built, which pools as the application
        // configured it, so that session would stay idle in it. It is closed too: only Covet's pool keeps sessions.
        if (ProviderConnectionSetup.For(relational).FindDataSource(relational) is { } efSource && _efDataSources.IsCopied(efSource))
            ProviderConnectionSetup.ClearDataSource(efSource);
    }

    private static ValueTask OpenAsync(CovetDbConnection covet, bool async, CancellationToken cancellationToken)
    {
        if (async)
            return new ValueTask(covet.OpenAsync(cancellationToken));
        covet.Open();
        return ValueTask.CompletedTask;
    }

    /// <summary>The Covet connection borrowing from the pool over the provider's data source.</summary>
    /// <exception cref="NotSupportedException">The data source pools its connections itself.</exception>
    private CovetDbConnection GetCovetConnection(DbDataSource dataSource)
    {
        if (!ReferenceEquals(dataSource, _providerSource))
        {
            var source = CovetSourceOver(dataSource, create: true)!;
            ForgetCovetConnection();
            _covetSource = source;
            _providerSource = dataSource;
        }
        return _covet ??= _covetSource!.CreateConnection();
    }

    /// <summary>
    /// The Covet pool for the provider's data source (null only when <paramref name="create"/> is false and there is none
    /// yet): over an unpooled copy when EF built the data source, over the data source itself when the application gave it.
    /// </summary>
    /// <exception cref="NotSupportedException">The data source Covet would pool over pools its connections itself.</exception>
    private CovetDataSource? CovetSourceOver(DbDataSource dataSource, bool create)
    {
        var key = _extension.Key;
        if ((_efDataSources.Find(dataSource, key) ?? CovetEfPools.FindDataSource(dataSource, key)) is { } existing)
            return existing;
        if (!create)
            return null;
        return UnpooledProviderDataSource.FindCopyBuilder(_services, _options, dataSource) is { } buildCopy
            ? _efDataSources.GetOrCreate(dataSource, key, buildCopy)
            : CovetEfPools.GetDataSource(dataSource, key);
    }

    /// <summary>The Covet connection borrowing from the pool of the provider's factory and EF's connection string.</summary>
    private CovetDbConnection GetCovetConnection(DbConnection connection, RelationalConnection relational)
    {
        var inner = DbProviderFactories.GetFactory(connection)
                    ?? throw new InvalidOperationException(
                        $"{connection.GetType().FullName} does not expose its DbProviderFactory, so Covet cannot create physical connections for it.");
        if (!ReferenceEquals(inner, _inner))
        {
            var factory = CovetEfPools.GetFactory(inner, _extension.Key);
            ForgetCovetConnection();
            _factory = factory;
            _inner = inner;
        }
        var connectionString = ConnectionStringOf(relational, connection);
        if (string.IsNullOrEmpty(connectionString))
            throw new InvalidOperationException("The context has no connection string; Covet needs one to find the pool.");
        _covet ??= (CovetDbConnection)_factory!.CreateConnection();
        if (_covet.ConnectionString != connectionString)
            _covet.ConnectionString = connectionString;
        return _covet;
    }

    /// <summary>Drops the Covet connection of the previous source (never called while borrowed: a borrow holds it).</summary>
    private void ForgetCovetConnection()
    {
        _covet?.Dispose();
        _covet = null;
        _factory = null;
        _inner = null;
        _covetSource = null;
        _providerSource = null;
    }

    // EF's own string (as configured, password included) rather than the connection object's, which some providers
    // normalise or strip of the password.
    private static string? ConnectionStringOf(RelationalConnection relational, DbConnection connection) =>
        relational.ConnectionString is { Length: > 0 } configured ? configured : connection.ConnectionString;

    private static NotSupportedException CallbacksNotSupported(DbConnection connection, IReadOnlyList<string> callbacks) => new(
        $"EF's provider set {string.Join(", ", callbacks)} on its {connection.GetType().Name} (Npgsql: ProvidePasswordCallback, " +
        "ProvideClientCertificatesCallback or RemoteCertificateValidationCallback in UseNpgsql's options). Such callbacks act when a " +
        "connection opens, and Covet opens its physical connections from the connection string alone, so it does not pool this context. " +
        "Configure them on the data source instead (Npgsql: ConfigureDataSource in UseNpgsql's options; Covet pools over that data " +
        "source), use CovetPoolOptions.PasswordProvider for rotating passwords, or remove UseCovetPool for this context.");
}
