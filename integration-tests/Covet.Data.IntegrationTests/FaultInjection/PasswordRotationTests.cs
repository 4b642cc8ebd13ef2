using System.Data.Common;
using Npgsql;

namespace Covet.Data.IntegrationTests.FaultInjection;

/// <summary>
/// Scenario f: the database password is rotated while the pool is running. <see cref="CovetPoolOptions.PasswordProvider"/>
/// is asked once per new physical connection; connections made with the old password keep working, new ones use
/// whatever the provider returns now. Runs against a throwaway PostgreSQL role, dropped at the end.
/// </summary>
[TestClass]
public sealed class PasswordRotationTests
{
    [TestMethod]
    public async Task RotatedPassword_ExistingConnectionsKeepWorking_NewOnesUseTheNewPassword_Postgres()
    {
        var role = "cv_fi_rot_" + Guid.NewGuid().ToString("N")[..12];
        var passwordA = "A-" + Guid.NewGuid().ToString("N");
        var passwordB = "B-" + Guid.NewGuid().ToString("N");
        await AdminAsync($"create role {role} login password '{passwordA}'");
        try
        {
            var current = passwordA;
            var calls = 0;
            var connectionString = new NpgsqlConnectionStringBuilder(FaultDb.Postgres.BaseConnectionString)
            {
                Username = role,
                Password = "never-used: the provider supplies it",
                ApplicationName = "cv-fi-rotation",
            }.ConnectionString;
            await using var dataSource = CovetDataSource.Create(NpgsqlFactory.Instance, connectionString, new CovetPoolOptions
            {
                MaxPoolSize = 10,
                AcquireTimeout = TimeSpan.FromSeconds(5),
                PasswordProvider = _ =>
                {
                    Interlocked.Increment(ref calls);
                    return ValueTask.FromResult(Volatile.Read(ref current));
                },
            });

            async Task<CovetDbConnection> OpenAsync()
            {
                var connection = dataSource.CreateConnection();
                await connection.OpenAsync();
                return connection;
            }

            // Three connections made with password A, held.
            var held = (await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => OpenAsync()))).ToList();
            foreach (var connection in held)
                Assert.AreEqual(role, await ScalarAsync(connection, "select current_user"));
            var callsWithA = calls;

            // Rotation on the server.
            await AdminAsync($"alter role {role} password '{passwordB}'");

            // The connections made with A keep working.
            foreach (var connection in held)
                Assert.AreEqual(role, await ScalarAsync(connection, "select current_user"));

            // Until the provider is switched, a new physical connection gets the server's own authentication error.
            var stale = dataSource.CreateConnection();
            var authError = await Assert.ThrowsAsync<PostgresException>(() => stale.OpenAsync());
            await stale.DisposeAsync();
            var callsAfterStale = calls;

            // The provider now returns B: more connections than exist means new physical ones, made with B.
            Volatile.Write(ref current, passwordB);
            held.AddRange(await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => OpenAsync())));
            foreach (var connection in held)
                Assert.AreEqual(role, await ScalarAsync(connection, "select current_user"));
            var callsAfterGrowth = calls;

            // Returned and borrowed again: the pool's connections are reused, the provider is not asked.
            foreach (var connection in held)
                await connection.DisposeAsync();
            await Measure.UntilAsync(() => dataSource.GetStatistics() is { InUse: 0, Idle: 5 }, TimeSpan.FromSeconds(5));
            var reused = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => OpenAsync()));
            foreach (var connection in reused)
                await connection.DisposeAsync();
            var callsAfterReuse = calls;

            // After Clear every connection is new, made with B.
            await Measure.UntilAsync(() => dataSource.GetStatistics() is { InUse: 0 }, TimeSpan.FromSeconds(5));
            dataSource.Clear();
            var fresh = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => OpenAsync()));
            foreach (var connection in fresh)
            {
                Assert.AreEqual(role, await ScalarAsync(connection, "select current_user"));
                await connection.DisposeAsync();
            }
            var stats = dataSource.GetStatistics();

            Console.WriteLine($"rotation: provider calls: {callsWithA} for the first 3 connections (A); {callsAfterStale - callsWithA} for a new one after the rotation, " +
                              $"still A: {authError.SqlState} {authError.MessageText}; {callsAfterGrowth - callsAfterStale} for 2 more (B); " +
                              $"{callsAfterReuse - callsAfterGrowth} for 5 reuses; {calls - callsAfterReuse} for 2 after Clear (B); total {calls}");
            Console.WriteLine($"rotation: {Measure.Describe(stats)}");

            Assert.AreEqual(3, callsWithA, "one call per new physical connection");
            Assert.AreEqual("28P01", authError.SqlState, "invalid_password, the server's own error, unwrapped");
            Assert.AreEqual(1, callsAfterStale - callsWithA);
            Assert.AreEqual(2, callsAfterGrowth - callsAfterStale);
            Assert.AreEqual(0, callsAfterReuse - callsAfterGrowth, "reusing pooled connections does not ask for a password");
            Assert.AreEqual(2, calls - callsAfterReuse);
            Assert.AreEqual(stats.ConnectionsCreated + stats.ConnectionFailures, calls, "exactly one call per physical connection attempt");
            Assert.AreEqual(CovetCircuitState.Closed, stats.CircuitState, "one authentication failure does not open the circuit");
        }
        finally
        {
            await AdminAsync($"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'");
            await AdminAsync($"drop role if exists {role}");
        }
    }

    private static async Task<object?> ScalarAsync(DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync();
    }

    private static async Task AdminAsync(string sql)
    {
        var admin = new NpgsqlConnectionStringBuilder(FaultDb.Postgres.BaseConnectionString) { Pooling = false, ApplicationName = "cv-fi-admin" }.ConnectionString;
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
