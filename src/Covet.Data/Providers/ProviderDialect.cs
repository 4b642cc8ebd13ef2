using System.Data;
using System.Data.Common;
using System.Net.Sockets;

namespace Covet.Data.Providers;

/// <summary>
/// What Covet knows about one ADO.NET provider: how to open a physical connection with the driver's own pooling off,
/// how to test it is alive, how to reset its session, and which errors mean the connection is dead.
/// </summary>
/// <remarks>
/// Dialects recognise providers by type name and bind to driver-specific members by reflection once, so the core package
/// references no driver and a user only loads the one they use. Methods take <c>async</c> and return a
/// <see cref="ValueTask"/> that completes synchronously when <c>async</c> is false (the pattern Npgsql uses), so the sync
/// and async paths share one body.
/// </remarks>
internal abstract class ProviderDialect
{
    /// <summary>OpenTelemetry <c>db.system.name</c>-style identifier: postgresql, mysql, sqlite, other_sql.</summary>
    public abstract string Name { get; }

    /// <summary>Whether the reset is local (no network round trip), so it can run inline on Close.</summary>
    public virtual bool ResetIsLocal => false;

    /// <summary>Whether this dialect can reset a session at all (the generic path needs <see cref="CovetPoolOptions.ResetQuery"/>).</summary>
    public virtual bool CanReset(CovetPoolOptions options) => true;

    /// <summary>
    /// The connection string given to the provider for physical connections: its own pooling off (so pools are not
    /// stacked) and automatic enlistment off (Covet enlists explicitly at checkout).
    /// </summary>
    public virtual string PhysicalConnectionString(DbProviderFactory factory, string providerConnectionString, CovetPoolOptions options)
    {
        var builder = factory.CreateConnectionStringBuilder() ?? new DbConnectionStringBuilder();
        builder.ConnectionString = providerConnectionString;
        TrySet(builder, "Pooling", false);
        TrySet(builder, "Enlist", false);
        return builder.ConnectionString;
    }

    /// <summary>
    /// Lowers the driver's connect timeout (<paramref name="keyword"/>, whole seconds) to the acquire timeout, so a sync
    /// <c>Open</c>, which cannot be cancelled, still gives up within it. A larger user value is capped; a smaller one kept.
    /// </summary>
    protected static void CapConnectTimeout(DbConnectionStringBuilder builder, string keyword, CovetPoolOptions options, int driverDefault)
    {
        if (options.AcquireTimeout == Timeout.InfiniteTimeSpan)
            return;
        var cap = Math.Max(1, (int)Math.Ceiling(options.AcquireTimeout.TotalSeconds)); // 0 means "no timeout" to drivers
        var current = builder.TryGetValue(keyword, out var value) && int.TryParse(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture), out var parsed)
            ? parsed
            : driverDefault;
        if (current == 0 || current > cap)
            builder[keyword] = cap;
    }

    /// <summary>True when the connection string already sets a command timeout, so Covet's default must not override it.</summary>
    public virtual bool ConnectionStringSetsCommandTimeout(string providerConnectionString)
    {
        var builder = new DbConnectionStringBuilder { ConnectionString = providerConnectionString };
        return builder.Keys.Cast<string>().Any(k =>
            k.Replace(" ", "", StringComparison.Ordinal).EndsWith("commandtimeout", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Whether running <paramref name="commandText"/> may leave session state for the next borrower (null: unknown, e.g.
    /// the borrower took the provider connection itself). Server-side code can change anything on a client-server
    /// database, so only dialects that can prove otherwise say no.
    /// </summary>
    public virtual bool MayChangeSession(string? commandText) => true;

    /// <summary>Tests that the connection is alive within <paramref name="timeout"/>. Never throws unless cancelled: a failure means dead.</summary>
    public virtual async ValueTask<bool> PingAsync(DbConnection connection, CovetPoolOptions options, TimeSpan timeout, bool async, CancellationToken cancellationToken)
    {
        if (connection.State != ConnectionState.Open)
            return false;
        try
        {
            var command = connection.CreateCommand();
            command.CommandText = options.HealthQuery ?? DefaultHealthQuery;
            command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds));
            if (async)
            {
                // Only the caller's token goes to the driver: cancelling a ping on timeout would make Npgsql send a cancel
                // request over a second connection, inside the timer's callback, which a black-holed server holds for
                // seconds. The wait is bounded here instead, and a hung ping's connection is abandoned.
                await Deadline.WithinAsync(command.ExecuteScalarAsync(cancellationToken), connection, timeout, options.TimeProvider, cancellationToken, this).ConfigureAwait(false);
            }
            else
            {
                command.ExecuteScalar(); // bounded by the driver's own command timeout
            }
            command.Dispose(); // not on the abandoned path: a command still running is left to its connection
            return connection.State == ConnectionState.Open;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The liveness query when the user gives none.</summary>
    protected virtual string DefaultHealthQuery => "SELECT 1";

    /// <summary>Resets session state. Throws on failure; the pool then destroys the connection.</summary>
    public virtual async ValueTask ResetAsync(DbConnection connection, CovetPoolOptions options, bool async, CancellationToken cancellationToken)
    {
        if (options.ResetQuery is { } sql)
            await ExecuteAsync(connection, sql, options, async, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Arranges for the driver to send the session reset together with the connection's next command, without I/O now.
    /// False when the driver cannot (then the pool resets with a round trip off the caller's path).
    /// </summary>
    public virtual bool TryQueueResetWithNextCommand(DbConnection connection) => false;

    /// <summary>Whether <see cref="TryQueueResetWithNextCommand"/> may be used for a pool with these settings (decided once per pool).</summary>
    public virtual bool CanQueueReset(string physicalConnectionString, CovetPoolOptions options) => false;

    /// <summary>
    /// Whether the driver reports the connection idle and in protocol sync, fit for the next borrower (false: a command is
    /// still running or the connection lost sync, so it must be destroyed). Drivers that cannot tell say true.
    /// </summary>
    public virtual bool IsReusable(DbConnection connection) => true;

    /// <summary>
    /// Whether <see cref="ProbeSocket"/> can see this driver's sockets (false: it always answers
    /// <see cref="SocketState.Unknown"/>, and the pool keeps pinging; it should log that once per pool).
    /// </summary>
    public virtual bool CanProbeSocket => false;

    /// <summary>
    /// Looks at an idle connection's socket without blocking, without I/O on the wire and without consuming anything the
    /// driver will read: <see cref="SocketState.Closed"/> means the server hung up (retire it), <see cref="SocketState.Readable"/>
    /// that something waits (verify with a ping), <see cref="SocketState.Quiet"/> nothing to see. Only for a connection
    /// the caller owns with no command running. Never throws.
    /// </summary>
    public virtual SocketState ProbeSocket(DbConnection connection) => SocketState.Unknown;

    /// <summary>The driver's socket under <paramref name="connection"/>, for <see cref="Sever"/>; null where the dialect cannot reach it.</summary>
    protected virtual Socket? SocketOf(DbConnection connection) => null;

    /// <summary>
    /// Cuts the socket under a connection whose driver call on the pool's behalf passed its deadline and was abandoned
    /// (<see cref="Deadline.WithinAsync{T}(Task{T}, DbConnection, TimeSpan, TimeProvider, CancellationToken, ProviderDialect?)"/>):
    /// the call then fails at once and the connection is let go, instead of the call running into the driver's own
    /// timeout. That matters for Npgsql, whose command timeout sends a cancel request over a new connection
    /// <em>synchronously</em>, on a thread-pool thread, and a black-holed network holds it there for seconds (seen as the
    /// health check's second ping taking a second longer than its deadline: thread-pool starvation on two cores); and for
    /// MySqlConnector, whose ping has no timeout of its own at all. Only for a connection the pool is about to destroy.
    /// Never throws.
    /// </summary>
    public void Sever(DbConnection connection)
    {
        try
        {
            if (SocketOf(connection) is not { } socket)
                return;
            socket.Shutdown(SocketShutdown.Both); // wakes a pending receive (end of stream) and tells the server at once
            socket.Dispose();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // Already closed by the driver, or never connected: nothing to cut.
        }
    }

    /// <summary>
    /// What <see cref="FailedBeforeUserCommand"/> will need, taken just before the first command after checkout runs on
    /// <paramref name="connection"/> (a driver may let go of its internals when the connection breaks). Null when no
    /// proof will be possible (then the command path need not keep anything). Cheap: no I/O.
    /// </summary>
    public virtual object? CaptureBeforeCommand(DbConnection connection) => null;

    /// <summary>
    /// Whether <paramref name="exception"/>, thrown by the command that ran after <see cref="CaptureBeforeCommand"/> gave
    /// <paramref name="captured"/>, provably came before the server read that command (so running it again on another
    /// connection cannot run it twice). False whenever it cannot be proven; never throws.
    /// </summary>
    public virtual bool FailedBeforeUserCommand(object? captured, Exception exception) => false;

    // ---- Conformance: where providers differ from each other, Covet follows the provider (issue 15). ----

    /// <summary>Whether <c>Open()</c> on an open connection returns quietly (SQLite) instead of throwing.</summary>
    public virtual bool OpenWhenOpenIsNoOp => false;

    /// <summary>Whether the provider raises Closed→Connecting and Connecting→Open (MySqlConnector) rather than Closed→Open.</summary>
    public virtual bool RaisesConnecting => false;

    /// <summary>Whether an <c>OpenAsync</c> with a cancelled token fails with <see cref="OperationCanceledException"/> itself rather than a cancelled task.</summary>
    public virtual bool CancelledOpenThrowsOperationCanceled => false;

    /// <summary>Whether a disposed connection refuses to open again (<see cref="ObjectDisposedException"/>).</summary>
    public virtual bool OpenAfterDisposeThrows => false;

    /// <summary>Whether the connection closes again when a StateChange handler throws on Open (Npgsql).</summary>
    public virtual bool ClosesWhenOpenHandlerThrows => false;

    /// <summary>Whether Close closes its open readers with <c>Close</c> (Npgsql: reading afterwards is an InvalidOperationException) rather than <c>Dispose</c>.</summary>
    public virtual bool ClosesReadersWithClose => false;

    /// <summary>Whether setting a command's Transaction to a completed one throws at once (Npgsql).</summary>
    public virtual bool RefusesCompletedTransactionAtSet => false;

    /// <summary>Whether <c>ChangeDatabase</c> closes and reopens the connection (Npgsql), raising both events.</summary>
    public virtual bool ChangeDatabaseReopens => false;

    /// <summary>Whether a connection with an empty connection string opens (SQLite: a temporary database; MySqlConnector: its defaults).</summary>
    public virtual bool OpensWithoutConnectionString => false;

    /// <summary>Whether the provider's own pool would keep connections of this string (false: every close really closes).</summary>
    public virtual bool KeepsIdle(string providerConnectionString) => true;

    /// <summary>
    /// Whether the provider's own <c>Open</c> enlists in an ambient <see cref="System.Transactions.Transaction"/> for this
    /// connection string, so Covet's checkout does too, and only then. Default: yes unless the string turns it off
    /// (<c>Enlist=false</c>, Npgsql's and SqlClient's keyword; <c>AutoEnlist=false</c>, MySqlConnector's).
    /// </summary>
    public virtual bool EnlistsInAmbientTransaction(string providerConnectionString)
    {
        var builder = new DbConnectionStringBuilder();
        try
        {
            builder.ConnectionString = providerConnectionString;
        }
        catch (ArgumentException)
        {
            return true; // the provider reports a malformed string itself
        }
        foreach (var key in (string[])["Enlist", "AutoEnlist", "Auto Enlist"])
        {
            if (builder.TryGetValue(key, out var value) && bool.TryParse(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)?.Trim(), out var on))
                return on;
        }
        return true;
    }

    /// <summary>What the provider throws when a transaction is used after its connection was closed.</summary>
    public virtual Exception TransactionOfClosedConnection() =>
        new InvalidOperationException("This transaction has completed; it is no longer usable: its connection was closed.");

    /// <summary>The command timeout the provider's own connection gives new commands (its default or its connection string's).</summary>
    public virtual int CommandTimeoutOf(DbConnection template)
    {
        using var command = template.CreateCommand();
        return command.CommandTimeout;
    }

    /// <summary>Whether a borrower left a transaction open with plain SQL (BEGIN) that the driver can see.</summary>
    public virtual bool InTransaction(DbConnection connection) => false;

    /// <summary>Rolls back a transaction opened with plain SQL (used when session reset is off: a transaction is never inherited).</summary>
    public virtual ValueTask RollbackAsync(DbConnection connection, CovetPoolOptions options, bool async, CancellationToken cancellationToken) =>
        ExecuteAsync(connection, "ROLLBACK", options, async, cancellationToken);

    /// <summary>Whether <paramref name="exception"/>, thrown while using <paramref name="connection"/>, means the physical connection is dead.</summary>
    public virtual bool IsConnectionLevelError(Exception exception, DbConnection connection)
    {
        if (connection.State != ConnectionState.Open)
            return true;
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is IOException or SocketException or TimeoutException)
                return true;
            if (e is DbException { SqlState: { } state } && IsConnectionLevelSqlState(state))
                return true;
        }
        return false;
    }

    /// <summary>SQLSTATE class 08 (connection exception) and PostgreSQL's shutdown codes (57P01..57P03).</summary>
    protected static bool IsConnectionLevelSqlState(string state) =>
        state.StartsWith("08", StringComparison.Ordinal) || state is "57P01" or "57P02" or "57P03";

    /// <summary>Creates the logical connection type users see (Npgsql needs a type named NpgsqlConnection for Dapper).</summary>
    public virtual CovetDbConnection CreateConnection(CovetProviderFactory? factory, Pooling.CovetPool? pool) => new(factory, pool);

    /// <summary>
    /// Runs a statement of the pool's own (reset, rollback) within <see cref="CovetPoolOptions.ValidationTimeout"/>. The
    /// caller's token never reaches the driver: cancelling a MySqlConnector command opens a second connection to the server
    /// to send <c>KILL QUERY</c> (one more server connection than the pool's maximum), and Npgsql's cancel request would run
    /// inside the caller's callback. The wait is bounded here instead; a statement still running is abandoned with its connection.
    /// </summary>
    protected async ValueTask ExecuteAsync(DbConnection connection, string sql, CovetPoolOptions options, bool async, CancellationToken cancellationToken)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(options.ValidationTimeout.TotalSeconds));
        if (async)
            await Deadline.WithinAsync(command.ExecuteNonQueryAsync(CancellationToken.None), connection, options.ValidationTimeout, options.TimeProvider, cancellationToken, this).ConfigureAwait(false);
        else
            command.ExecuteNonQuery();
        command.Dispose(); // not on the abandoned path: a command still running is left to its connection
    }

    /// <summary>Sets a keyword only where the provider's own builder recognises it (a plain builder accepts anything).</summary>
    protected static void TrySet(DbConnectionStringBuilder builder, string keyword, object value)
    {
        if (builder.GetType() == typeof(DbConnectionStringBuilder))
            return;
        try
        {
            if (builder.ContainsKey(keyword))
                builder[keyword] = value;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            // Not a keyword of this provider.
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, ProviderDialect> Dialects = new();

    /// <summary>
    /// Finds the dialect for a provider by its factory's type. Dialects are stateless and bind driver members once, so one
    /// instance per factory type serves every pool.
    /// </summary>
    public static ProviderDialect For(DbProviderFactory factory) => Dialects.GetOrAdd(factory.GetType(), static (_, f) => Create(f), factory);

    private static ProviderDialect Create(DbProviderFactory factory) =>
        factory.GetType().FullName switch
        {
            "Npgsql.NpgsqlFactory" => new PostgresDialect(factory),
            "MySqlConnector.MySqlConnectorFactory" => new MySqlConnectorDialect(factory),
            "Microsoft.Data.Sqlite.SqliteFactory" => new SqliteDialect(),
            _ => new GenericDialect(),
        };
}

/// <summary>Any other provider: liveness by health query, reset only through <see cref="CovetPoolOptions.ResetQuery"/>.</summary>
internal sealed class GenericDialect : ProviderDialect
{
    public override string Name => "other_sql";

    public override bool CanReset(CovetPoolOptions options) => options.ResetQuery is not null;
}
