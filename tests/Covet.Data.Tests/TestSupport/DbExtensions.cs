using System.Data.Common;

namespace Covet.Data.Tests.TestSupport;

/// <summary>Plain ADO.NET one-liners (named so they never clash with Dapper's extension methods).</summary>
internal static class DbExtensions
{
    public static object? QueryScalar(this DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public static async Task<object?> QueryScalarAsync(this DbConnection connection, string sql, CancellationToken cancellationToken = default)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    public static int Exec(this DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteNonQuery();
    }

    public static async Task<int> ExecAsync(this DbConnection connection, string sql, CancellationToken cancellationToken = default)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Runs <paramref name="sql"/> in <paramref name="transaction"/> (providers such as SQLite and MySqlConnector, and the fake, refuse a command without it).</summary>
    public static int Exec(this DbConnection connection, string sql, DbTransaction transaction)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command.ExecuteNonQuery();
    }

    public static async Task<int> ExecAsync(this DbConnection connection, string sql, DbTransaction transaction)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return await command.ExecuteNonQueryAsync();
    }
}
