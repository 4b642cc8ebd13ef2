#if MYSQLCONNECTOR
using MySqlConnector; // the Pomelo test project: the driver Pomelo is built on
#else
using MySql.Data.MySqlClient; // the EF Core 10 test project: the driver of Oracle's provider
#endif

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>
/// MariaDB/MySQL admin helpers (unpooled), over the driver of the project's EF provider: MySql.Data in the EF Core 10 test
/// project, MySqlConnector in the Pomelo one (MYSQLCONNECTOR). A test's sessions are told apart by their default database.
/// </summary>
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

    /// <summary>Fails the run, with instructions, when the MariaDB test server is not there.</summary>
    public static void RequireReachable()
    {
        var mysql = Env.Require(Env.MySqlVariable);
        try
        {
            using var connection = new MySqlConnection(AdminConnectionString(mysql));
            connection.Open();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"Cannot connect to MariaDB/MySQL with ${Env.MySqlVariable} ({Env.DescribeWithoutPassword(mysql)}): {e.Message}. " + Env.HowToStart, e);
        }
    }

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
