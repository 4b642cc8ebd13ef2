using System.Data.Common;
using System.Linq.Expressions;

namespace Covet.Data.Providers;

/// <summary>
/// MySQL and MariaDB through MySqlConnector. Liveness is <c>COM_PING</c> (<c>MySqlConnection.PingAsync</c>), reset is
/// <c>COM_RESET_CONNECTION</c> (<c>ResetConnectionAsync</c>): both protocol-level, bound once by reflection so the core
/// package does not reference the driver.
/// </summary>
internal sealed class MySqlConnectorDialect : ProviderDialect
{
    private readonly Func<DbConnection, CancellationToken, Task<bool>>? _ping;
    private readonly Func<DbConnection, CancellationToken, Task>? _reset;
    private readonly MySql.MySqlConnectorSocketAccess? _sockets;
    private readonly Func<DbConnection, bool>? _busy;

    public MySqlConnectorDialect(DbProviderFactory factory)
    {
        var connectionType = factory.CreateConnection()?.GetType();
        _sockets = connectionType is null ? null : MySql.MySqlConnectorSocketAccess.For(connectionType);
        _ping = Bind<Task<bool>>(connectionType, "PingAsync");
        // ResetConnectionAsync returns ValueTask in MySqlConnector 2.x and Task in older versions.
        _reset = Bind<Task>(connectionType, "ResetConnectionAsync")
            ?? (Bind<ValueTask>(connectionType, "ResetConnectionAsync") is { } reset ? (c, t) => reset(c, t).AsTask() : null);
        if (_reset is null)
            throw new NotSupportedException("This MySqlConnector version has no ResetConnectionAsync(CancellationToken): Covet cannot reset sessions between borrowers.");
        _busy = BindBusy(connectionType);
    }

    public override string Name => "mysql";

    public override bool CanProbeSocket => _sockets is not null;

    public override SocketState ProbeSocket(DbConnection connection) => _sockets?.Probe(connection) ?? SocketState.Unknown;

    /// <inheritdoc />
    protected override System.Net.Sockets.Socket? SocketOf(DbConnection connection) => _sockets?.SocketOf(connection);

    public override bool RaisesConnecting => true;

    public override bool CancelledOpenThrowsOperationCanceled => true;

    public override bool OpensWithoutConnectionString => true;

    public override bool OpenAfterDisposeThrows => true;

    public override Exception TransactionOfClosedConnection() => new ObjectDisposedException("MySqlTransaction");

    // The driver's own state: a reader still active or a command still running on the session (a reader read to its end
    // but never closed keeps the session busy, and every later command would fail with "already in use").
    public override bool IsReusable(DbConnection connection) => _busy is null || !_busy(connection);

    private static Func<DbConnection, bool>? BindBusy(Type? connectionType)
    {
        const System.Reflection.BindingFlags flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public;
        var hasActiveReader = connectionType?.GetProperty("HasActiveReader", flags);
        var activeCommandId = connectionType?.GetProperty("ActiveCommandId", flags);
        if (hasActiveReader?.PropertyType != typeof(bool) || activeCommandId?.PropertyType != typeof(int?))
            return null; // another driver version: the readers Covet tracks are still closed before return
        var connection = Expression.Parameter(typeof(DbConnection));
        var typed = Expression.Convert(connection, connectionType!);
        var body = Expression.OrElse(
            Expression.Property(typed, hasActiveReader),
            Expression.NotEqual(Expression.Coalesce(Expression.Property(typed, activeCommandId), Expression.Constant(0)), Expression.Constant(0)));
        try
        {
            return Expression.Lambda<Func<DbConnection, bool>>(body, connection).Compile();
        }
        catch (Exception e) when (e is InvalidOperationException or MemberAccessException)
        {
            return null;
        }
    }

    public override string PhysicalConnectionString(DbProviderFactory factory, string providerConnectionString, CovetPoolOptions options)
    {
        var builder = factory.CreateConnectionStringBuilder()!;
        builder.ConnectionString = providerConnectionString;
        builder["Pooling"] = false;
        builder["AutoEnlist"] = false;
        CapConnectTimeout(builder, "Connection Timeout", options, driverDefault: 15);
        // COM_RESET_CONNECTION deallocates server-side prepared statements, but the driver's public reset keeps its own
        // cache of them, so a statement prepared before a reset would fail after it. Unless the user chose, Prepare() is
        // made a no-op (MySqlConnector's IgnorePrepare), which keeps every command working across borrowers.
        if (!new DbConnectionStringBuilder { ConnectionString = providerConnectionString }.Keys.Cast<string>()
                .Any(k => k.Replace(" ", "", StringComparison.Ordinal).Equals("IgnorePrepare", StringComparison.OrdinalIgnoreCase)))
            builder["IgnorePrepare"] = true;
        return builder.ConnectionString;
    }

    public override async ValueTask<bool> PingAsync(DbConnection connection, CovetPoolOptions options, TimeSpan timeout, bool async, CancellationToken cancellationToken)
    {
        if (_ping is null || options.HealthQuery is not null)
            return await base.PingAsync(connection, options, timeout, async, cancellationToken).ConfigureAwait(false);
        try
        {
            // MySqlConnector's ping ignores its token on a black-holed socket: the wait is bounded here instead (and no
            // token reaches the driver, whose cancellation opens a second server connection; see ExecuteAsync).
            var task = Deadline.WithinAsync(_ping(connection, CancellationToken.None), connection, timeout, options.TimeProvider, cancellationToken, this);
            return async ? await task.ConfigureAwait(false) : task.GetAwaiter().GetResult();
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public override async ValueTask ResetAsync(DbConnection connection, CovetPoolOptions options, bool async, CancellationToken cancellationToken)
    {
        if (options.ResetQuery is not null || _reset is null)
        {
            await base.ResetAsync(connection, options, async, cancellationToken).ConfigureAwait(false);
            return;
        }
        // No token reaches the driver (see ExecuteAsync): the wait is bounded here.
        var task = Deadline.WithinAsync(_reset(connection, CancellationToken.None), connection, options.ValidationTimeout, options.TimeProvider, cancellationToken, this);
        if (async)
            await task.ConfigureAwait(false);
        else
            task.GetAwaiter().GetResult();
    }

    private static Func<DbConnection, CancellationToken, TResult>? Bind<TResult>(Type? connectionType, string method)
    {
        var info = connectionType?.GetMethod(method, [typeof(CancellationToken)]);
        if (info is null || info.ReturnType != typeof(TResult) && !(typeof(TResult).IsClass && typeof(TResult).IsAssignableFrom(info.ReturnType)))
            return null;
        var connection = Expression.Parameter(typeof(DbConnection));
        var token = Expression.Parameter(typeof(CancellationToken));
        var call = Expression.Call(Expression.Convert(connection, connectionType!), info, token);
        return Expression.Lambda<Func<DbConnection, CancellationToken, TResult>>(Expression.Convert(call, typeof(TResult)), connection, token).Compile();
    }
}
