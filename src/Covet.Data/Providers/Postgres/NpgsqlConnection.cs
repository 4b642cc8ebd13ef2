namespace Covet.Data.Providers.Postgres;

/// <summary>
/// The logical connection Covet hands out for Npgsql. It is a <see cref="CovetDbConnection"/> in every way; only its
/// type name differs, because Dapper enables PostgreSQL array parameters by the connection's type name.
/// </summary>
public sealed class NpgsqlConnection : CovetDbConnection
{
    internal NpgsqlConnection(CovetProviderFactory? factory, Pooling.CovetPool? pool) : base(factory, pool) { }
}
