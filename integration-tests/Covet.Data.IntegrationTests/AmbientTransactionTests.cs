using System.Data.Common;
using System.Transactions;
using Dapper;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Differential: whether an open inside a <see cref="TransactionScope"/> enlists is the provider's call (its connection
/// string's <c>Enlist</c> / <c>AutoEnlist</c>), and Covet follows it: with enlistment off, a rolled-back scope leaves the
/// insert in place on the provider's own pool and through Covet alike; with it on, both roll it back.
/// </summary>
[TestClass]
public sealed class AmbientTransactionTests
{
    private static string Pg(string extra) => Environment.GetEnvironmentVariable("COVET_TEST_PG") is { Length: > 0 } cs
        ? cs + ";" + extra
        : throw new InvalidOperationException("COVET_TEST_PG is not set: run the integration tests through scripts/test.sh (it starts the servers).");

    private static string MySql(string extra) => Environment.GetEnvironmentVariable("COVET_TEST_MYSQL") is { Length: > 0 } cs
        ? cs + ";" + extra
        : throw new InvalidOperationException("COVET_TEST_MYSQL is not set: run the integration tests through scripts/test.sh (it starts the servers).");

    private static async Task<long> RowsAfterRolledBackScopeAsync(DbProviderFactory factory, string connectionString, string table)
    {
        using (new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
        {
            await using var connection = factory.CreateConnection()!;
            connection.ConnectionString = connectionString;
            await connection.OpenAsync();
            await connection.ExecuteAsync($"INSERT INTO {table} (id) VALUES (1)");
            // not completed: rolled back if the connection enlisted
        }
        await using var check = factory.CreateConnection()!;
        check.ConnectionString = connectionString;
        await check.OpenAsync();
        var rows = await check.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
        await check.ExecuteAsync($"DELETE FROM {table}");
        return rows;
    }

    [TestMethod]
    [DataRow("postgres", "Enlist=false", 1L)]
    [DataRow("postgres", "Enlist=true", 0L)]
    [DataRow("mariadb", "AutoEnlist=false", 1L)]
    [DataRow("mariadb", "AutoEnlist=true", 0L)]
    public async Task OpenInsideAScope_EnlistsExactlyWhenTheProviderWould(string provider, string keyword, long expectedRows)
    {
        var (factory, connectionString) = provider == "postgres"
            ? ((DbProviderFactory)NpgsqlFactory.Instance, Pg(keyword))
            : (MySqlConnectorFactory.Instance, MySql(keyword));
        var table = $"ambient_{provider}_{keyword.Replace("=", "_", StringComparison.Ordinal)}_{Guid.NewGuid():N}"[..40];
        await using (var setup = factory.CreateConnection()!)
        {
            setup.ConnectionString = connectionString;
            await setup.OpenAsync();
            await setup.ExecuteAsync($"CREATE TABLE {table} (id INT PRIMARY KEY)");
        }
        try
        {
            var raw = await RowsAfterRolledBackScopeAsync(factory, connectionString, table);
            var covet = await RowsAfterRolledBackScopeAsync(new CovetProviderFactory(factory), connectionString, table);
            Assert.AreEqual(expectedRows, raw, "the provider's own behaviour (the premise)");
            Assert.AreEqual(raw, covet, "Covet enlisted differently from the provider");
        }
        finally
        {
            await using var drop = factory.CreateConnection()!;
            drop.ConnectionString = connectionString;
            await drop.OpenAsync();
            await drop.ExecuteAsync($"DROP TABLE {table}");
        }
    }
}
