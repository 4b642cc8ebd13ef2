using MySql.Data.MySqlClient;
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

/// <summary>MariaDB/MySQL admin helpers (MySql.Data, unpooled). A test's sessions are told apart by their default database.</summary>
internal static class MySqlServer
{
    public static string BaseConnectionString => Env.Require(Env.MySqlVariable);

    public static string AdminConnectionString(string? baseConnectionString = null) =>
        new MySqlConnectionStringBuilder(baseConnectionString ?? BaseConnectionString)
        {
            Pooling = false,
            Database = "",
            ConnectionTimeout = 5,
        }.ConnectionString;

    public static async Task<MySqlConnection> OpenAdminAsync()
    {
        var connection = new MySqlConnection(AdminConnectionString());
        await connection.OpenAsync();
        return connection;
    }

    public static async Task<List<long>> SessionIdsAsync(string database)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new MySqlCommand("select id from information_schema.processlist where db = @d order by id", connection);
        command.Parameters.AddWithValue("@d", database);
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            ids.Add(Convert.ToInt64(reader.GetValue(0)));
        return ids;
    }

    /// <summary>KILLs the sessions and waits until the server no longer lists them.</summary>
    public static async Task KillAsync(IReadOnlyCollection<long> ids)
    {
        if (ids.Count == 0)
            return;
        await using (var connection = await OpenAdminAsync())
        {
            foreach (var id in ids)
            {
                await using var command = new MySqlCommand($"KILL CONNECTION {id}", connection);
                try
                {
                    await command.ExecuteNonQueryAsync();
                }
                catch (MySqlException e) when (e.Number == 1094) // unknown thread id: already gone
                {
                }
            }
        }
        await Poll.UntilAsync(async () =>
        {
            await using var connection = await OpenAdminAsync();
            await using var command = new MySqlCommand($"select count(*) from information_schema.processlist where id in ({string.Join(",", ids)})", connection);
            return Convert.ToInt64(await command.ExecuteScalarAsync()) == 0;
        }, $"killed sessions {string.Join(",", ids)} to disappear from the processlist");
    }

    public static async Task DropDatabaseAsync(string database)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new MySqlCommand($"drop database if exists `{database}`", connection);
        await command.ExecuteNonQueryAsync();
    }
}
