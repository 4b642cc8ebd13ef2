using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>PostgreSQL admin helpers: unpooled connections to the maintenance database, never counted as the pool's.</summary>
internal static class PgServer
{
    public static string BaseConnectionString => Env.Require(Env.PgVariable);

    public static string AdminConnectionString(string? baseConnectionString = null) =>
        new NpgsqlConnectionStringBuilder(baseConnectionString ?? BaseConnectionString)
        {
            Pooling = false,
            ApplicationName = "covet-ef-admin",
            Database = "postgres",
            Timeout = 5,
        }.ConnectionString;

    /// <summary>Fails the run, with instructions, when the PostgreSQL test server is not there.</summary>
    public static void RequireReachable()
    {
        var pg = Env.Require(Env.PgVariable);
        try
        {
            using var connection = new NpgsqlConnection(AdminConnectionString(pg));
            connection.Open();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"Cannot connect to PostgreSQL with ${Env.PgVariable} ({Env.DescribeWithoutPassword(pg)}): {e.Message}. " + Env.HowToStart, e);
        }
    }

    public static async Task<NpgsqlConnection> OpenAdminAsync()
    {
        var connection = new NpgsqlConnection(AdminConnectionString());
        await connection.OpenAsync();
        return connection;
    }

    public static async Task<List<int>> PidsAsync(string database, string applicationName)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new NpgsqlCommand(
            "select pid from pg_stat_activity where datname = @d and application_name = @a order by pid", connection);
        command.Parameters.AddWithValue("d", database);
        command.Parameters.AddWithValue("a", applicationName);
        var pids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            pids.Add(reader.GetInt32(0));
        return pids;
    }

    /// <summary>Terminates the backends (pg_terminate_backend) and waits until the server no longer lists them.</summary>
    public static async Task TerminateAsync(IReadOnlyCollection<int> pids)
    {
        if (pids.Count == 0)
            return;
        await using (var connection = await OpenAdminAsync())
        await using (var command = new NpgsqlCommand("select pg_terminate_backend(pid) from unnest(@pids) as pid", connection))
        {
            command.Parameters.AddWithValue("pids", pids.ToArray());
            await command.ExecuteNonQueryAsync();
        }
        await Poll.UntilAsync(async () =>
        {
            await using var connection = await OpenAdminAsync();
            await using var command = new NpgsqlCommand("select count(*) from pg_stat_activity where pid = any(@pids)", connection);
            command.Parameters.AddWithValue("pids", pids.ToArray());
            return (long)(await command.ExecuteScalarAsync())! == 0;
        }, $"terminated backends {string.Join(",", pids)} to exit");
    }

    public static async Task DropDatabaseAsync(string database)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new NpgsqlCommand($"drop database if exists \"{database}\" with (force)", connection);
        await command.ExecuteNonQueryAsync();
    }
}
