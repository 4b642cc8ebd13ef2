using System.Data.Common;

namespace Covet.Data.Providers;

/// <summary>
/// PostgreSQL through Npgsql. Reset is <c>DISCARD ALL</c> (variables, temp tables, LISTEN, advisory locks, prepared
/// statements); it fails inside a transaction block, and a failed reset destroys the connection, so a transaction opened
/// with plain SQL and left open never reaches the next borrower.
/// </summary>
internal sealed class PostgresDialect : ProviderDialect
{
    public override string Name => "postgresql";

    public override string PhysicalConnectionString(DbProviderFactory factory, string providerConnectionString)
    {
        var builder = factory.CreateConnectionStringBuilder()!;
        builder.ConnectionString = providerConnectionString;
        builder["Pooling"] = false;
        builder["Enlist"] = false;
        return builder.ConnectionString;
    }

    public override async ValueTask ResetAsync(DbConnection connection, CovetPoolOptions options, bool async, CancellationToken cancellationToken) =>
        await ExecuteAsync(connection, options.ResetQuery ?? "DISCARD ALL", options.ValidationTimeout, async, cancellationToken).ConfigureAwait(false);

    // Dapper turns on PostgreSQL array parameters (`= any(@ids)`) only for a connection whose type is named
    // NpgsqlConnection, so Npgsql pools hand out this subclass.
    public override CovetDbConnection CreateConnection(CovetProviderFactory? factory, Pooling.CovetPool? pool) =>
        new Postgres.NpgsqlConnection(factory, pool);
}
