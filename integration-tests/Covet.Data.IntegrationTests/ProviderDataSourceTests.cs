using System.Transactions;
using Dapper;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Covet over the provider's own data source: what is configured there (here Npgsql's MapEnum) applies to every pooled
/// physical connection, which a connection made from NpgsqlFactory and a connection string would not have.
/// </summary>
[TestClass]
public sealed class ProviderDataSourceTests
{
    public enum Mood { Sad, Happy }

    [TestMethod]
    public async Task CovetOverNpgsqlDataSource_KeepsItsEnumMapping()
    {
        var type = $"mood_{Guid.NewGuid():N}";
        var table = Sql.UniqueTable();
        await using (var admin = new NpgsqlConnection(Env.Require("COVET_TEST_PG")))
        {
            await admin.OpenAsync();
            await admin.ExecuteAsync($"create type {type} as enum ('sad', 'happy'); create table {table} (id int, mood {type})");
        }
        try
        {
            var builder = new NpgsqlDataSourceBuilder(Env.Require("COVET_TEST_PG") + ";Pooling=false");
            builder.MapEnum<Mood>(type);
            await using var npgsql = builder.Build();
            await using var covet = CovetDataSource.Create(npgsql, new CovetPoolOptions { MaxPoolSize = 2 });

            await using (var connection = await covet.OpenConnectionAsync())
            {
                await using var command = connection.CreateCommand();
                command.CommandText = $"insert into {table} (id, mood) values (1, @mood)";
                command.Parameters.Add(new NpgsqlParameter { ParameterName = "mood", Value = Mood.Happy });
                Assert.AreEqual(1, await command.ExecuteNonQueryAsync(), "the enum parameter is written through the data source's mapping");
            }
            await using (var connection = await covet.OpenConnectionAsync())
                Assert.AreEqual(Mood.Happy, await connection.QuerySingleAsync<Mood>($"select mood from {table} where id = 1"));

            var stats = covet.GetStatistics();
            Assert.AreEqual(1, stats.ConnectionsCreated, "the second borrower reused the pooled physical connection");
            Assert.AreEqual(0, stats.InUse);
        }
        finally
        {
            await using var admin = new NpgsqlConnection(Env.Require("COVET_TEST_PG"));
            await admin.OpenAsync();
            await admin.ExecuteAsync($"drop table if exists {table}; drop type if exists {type}");
        }
    }

    [TestMethod]
    public async Task WarmUpStartedInsideATransactionScope_LeavesIdleConnectionsOutOfThatTransaction()
    {
        // A data source's connections keep Npgsql's Enlist=true: a warm-up open on the creator's thread would enlist in
        // the creator's transaction, and the next borrower's work would be rolled back with it.
        var table = await CreateTableAsync("id int");
        try
        {
            await using var npgsql = NpgsqlDataSource.Create(Env.Require("COVET_TEST_PG") + ";Pooling=false");
            CovetDataSource covet;
            using (new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
            {
                covet = CovetDataSource.Create(npgsql, new CovetPoolOptions { MinPoolSize = 2, MaxPoolSize = 2 });
                await Poll.UntilAsync(() => covet.GetStatistics().Idle == 2, "two warm idle connections");
                using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
                {
                    await using var connection = await covet.OpenConnectionAsync();
                    await connection.ExecuteAsync($"insert into {table} values (1)");
                }
                // not completed: the creator's transaction rolls back
            }
            await using (covet)
                Assert.AreEqual(1L, await CountAsync(table), "a row written outside any transaction was rolled back with the creator's");
        }
        finally
        {
            await DropAsync(table);
        }
    }

    [TestMethod]
    public async Task OpenedInsideATransactionScope_IsEnlistedByCovet_AndRollsBackWithIt()
    {
        var table = await CreateTableAsync("id int");
        try
        {
            await using var npgsql = NpgsqlDataSource.Create(Env.Require("COVET_TEST_PG") + ";Pooling=false");
            await using var covet = CovetDataSource.Create(npgsql, new CovetPoolOptions { MaxPoolSize = 2 });
            using (new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
            {
                await using var connection = await covet.OpenConnectionAsync(); // a new physical connection, opened for this caller
                await connection.ExecuteAsync($"insert into {table} values (1)");
            }
            using (var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
            {
                await using var connection = await covet.OpenConnectionAsync();
                await connection.ExecuteAsync($"insert into {table} values (2)");
                scope.Complete();
            }
            Assert.AreEqual(1L, await CountAsync(table), "only the completed scope's row remains");
            Assert.AreEqual(0, covet.GetStatistics().InUse);
        }
        finally
        {
            await DropAsync(table);
        }
    }

    private static async Task<string> CreateTableAsync(string columns)
    {
        var table = Sql.UniqueTable();
        await using var admin = new NpgsqlConnection(Env.Require("COVET_TEST_PG"));
        await admin.OpenAsync();
        await admin.ExecuteAsync($"create table {table} ({columns})");
        return table;
    }

    private static async Task<long> CountAsync(string table)
    {
        await using var admin = new NpgsqlConnection(Env.Require("COVET_TEST_PG"));
        await admin.OpenAsync();
        return await admin.ExecuteScalarAsync<long>($"select count(*) from {table}");
    }

    private static async Task DropAsync(string table)
    {
        await using var admin = new NpgsqlConnection(Env.Require("COVET_TEST_PG"));
        await admin.OpenAsync();
        await admin.ExecuteAsync($"drop table if exists {table}");
    }

    [TestMethod]
    public async Task CovetOverAPoolingDataSource_IsRefusedNamingTheSetting()
    {
        await using var pooling = NpgsqlDataSource.Create(Env.Require("COVET_TEST_PG"));
        var error = Assert.ThrowsExactly<CovetConfigurationException>(() => CovetDataSource.Create(pooling));
        StringAssert.Contains(error.Message, "Pooling=false");
    }
}
