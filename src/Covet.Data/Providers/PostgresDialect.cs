using System.Data.Common;

namespace Covet.Data.Providers;

/// <summary>
/// PostgreSQL through Npgsql. Reset is <c>DISCARD ALL</c> (variables, temp tables, LISTEN, advisory locks, prepared
/// statements); it fails inside a transaction block, and a failed reset destroys the connection, so a transaction opened
/// with plain SQL and left open never reaches the next borrower.
/// </summary>
internal sealed class PostgresDialect : ProviderDialect
{
    private readonly Postgres.NpgsqlResetPipelining? _pipelining;
    private readonly Postgres.NpgsqlSocketAccess? _sockets;

    public PostgresDialect(DbProviderFactory factory)
    {
        var type = factory.CreateConnection()?.GetType();
        _pipelining = type is null ? null : Postgres.NpgsqlResetPipelining.For(type);
        _sockets = type is null ? null : Postgres.NpgsqlSocketAccess.For(type);
    }

    public override string Name => "postgresql";

    public override bool OpenAfterDisposeThrows => true;

    public override bool ChangeDatabaseReopens => true;

    public override bool ClosesWhenOpenHandlerThrows => true;

    public override bool ClosesReadersWithClose => true;

    public override bool RefusesCompletedTransactionAtSet => true;

    public override bool CancelledOpenThrowsOperationCanceled => true;

    public override bool CanQueueReset(string physicalConnectionString, CovetPoolOptions options)
    {
        if (_pipelining is null || options.ResetQuery is not null)
            return false;
        // A keepalive timer writes to an idle connection; queueing into the same buffer would race it.
        var builder = new DbConnectionStringBuilder { ConnectionString = physicalConnectionString };
        return !(builder.TryGetValue("Keepalive", out var value) && Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) is { } text && text != "0");
    }

    public override bool TryQueueResetWithNextCommand(DbConnection connection) => _pipelining?.TryQueue(connection) == true;

    public override bool IsReusable(DbConnection connection) => _pipelining?.IsReady(connection) ?? true;

    public override bool InTransaction(DbConnection connection) => _pipelining?.InTransaction(connection) == true;

    public override bool CanProbeSocket => _sockets is not null;

    public override SocketState ProbeSocket(DbConnection connection) => _sockets?.Probe(connection) ?? SocketState.Unknown;

    /// <inheritdoc />
    protected override System.Net.Sockets.Socket? SocketOf(DbConnection connection) => _sockets?.SocketOf(connection);

    public override object? CaptureBeforeCommand(DbConnection connection) => _pipelining?.ConnectorWithQueuedReset(connection);

    public override bool FailedBeforeUserCommand(object? captured, Exception exception) =>
        _pipelining is not null && Postgres.TerminationBeforeCommand.Proves(_pipelining, captured, exception);

    public override string PhysicalConnectionString(DbProviderFactory factory, string providerConnectionString, CovetPoolOptions options)
    {
        var builder = factory.CreateConnectionStringBuilder()!;
        builder.ConnectionString = providerConnectionString;
        builder["Pooling"] = false;
        builder["Enlist"] = false;
        CapConnectTimeout(builder, "Timeout", options, driverDefault: 15);
        return builder.ConnectionString;
    }

    // What DISCARD ALL does, minus DEALLOCATE ALL and DISCARD PLANS: used while Npgsql holds prepared statements, which
    // must stay valid on the server (Npgsql's own pool makes the same choice).
    private const string ResetKeepingPreparedStatements =
        "SET SESSION AUTHORIZATION DEFAULT;RESET ALL;CLOSE ALL;UNLISTEN *;SELECT pg_advisory_unlock_all();DISCARD SEQUENCES;DISCARD TEMP";

    public override async ValueTask ResetAsync(DbConnection connection, CovetPoolOptions options, bool async, CancellationToken cancellationToken)
    {
        if (options.ResetQuery is { } custom)
        {
            await ExecuteAsync(connection, custom, options, async, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (_pipelining is null)
        {
            // Without Npgsql's internals we cannot see the transaction state: DISCARD ALL fails inside a transaction block,
            // and a failed reset destroys the connection, so an open transaction still never reaches the next borrower.
            await ExecuteAsync(connection, "DISCARD ALL", options, async, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (_pipelining.InTransaction(connection))
            await ExecuteAsync(connection, "ROLLBACK", options, async, cancellationToken).ConfigureAwait(false);
        var sql = _pipelining.HasPreparedStatements(connection) ? ResetKeepingPreparedStatements : "DISCARD ALL";
        await ExecuteAsync(connection, sql, options, async, cancellationToken).ConfigureAwait(false);
    }

    // Dapper turns on PostgreSQL array parameters (`= any(@ids)`) only for a connection whose type is named
    // NpgsqlConnection, so Npgsql pools hand out this subclass.
    public override CovetDbConnection CreateConnection(CovetProviderFactory? factory, Pooling.CovetPool? pool) =>
        new Postgres.NpgsqlConnection(factory, pool);
}
