using MySqlConnector;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// MariaDB helpers. information_schema.processlist cannot tell pools apart by application name, so every pool under test
/// logs in as its own throwaway user (<see cref="MySqlTestUser"/>) and its server connections are counted by user.
/// </summary>
internal static class MySql
{
    public static string BaseConnectionString => Env.Require(Env.MySqlVariable);

    public static string AdminConnectionString(string? baseConnectionString = null) =>
        new MySqlConnectionStringBuilder(baseConnectionString ?? BaseConnectionString)
        {
            Pooling = false,
            ConnectionTimeout = 5,
        }.ConnectionString;

    public static MySqlConnection OpenAdmin()
    {
        var connection = new MySqlConnection(AdminConnectionString());
        connection.Open();
        return connection;
    }

    public static async Task<List<long>> ConnectionIdsAsync(string user)
    {
        await using var connection = OpenAdmin();
        await using var command = new MySqlCommand("select id from information_schema.processlist where user = @u order by id", connection);
        command.Parameters.AddWithValue("@u", user);
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            ids.Add(Convert.ToInt64(reader.GetValue(0)));
        return ids;
    }

    public static async Task<int> CountAsync(string user) => (await ConnectionIdsAsync(user)).Count;

    /// <summary>KILLs the connections and waits until the server no longer lists them.</summary>
    public static async Task KillAsync(IReadOnlyCollection<long> ids)
    {
        await using (var connection = OpenAdmin())
        {
            foreach (var id in ids)
            {
                await using var command = new MySqlCommand($"KILL CONNECTION {id}", connection);
                try
                {
                    await command.ExecuteNonQueryAsync();
                }
                catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.NoSuchThread)
                {
                    // already gone
                }
            }
        }
        await Poll.UntilAsync(async () =>
        {
            await using var connection = OpenAdmin();
            await using var command = new MySqlCommand(
                $"select count(*) from information_schema.processlist where id in ({string.Join(",", ids)})", connection);
            return Convert.ToInt64(await command.ExecuteScalarAsync()) == 0;
        }, $"killed connections {string.Join(",", ids)} to disappear from the processlist");
    }

    /// <summary>Restarts the server in place ($COVET_TEST_MYSQL_RESTART) and waits until it accepts connections again.</summary>
    public static async Task RestartAsync()
    {
        Env.RunShell(Env.MySqlRestartVariable, TimeSpan.FromSeconds(120));
        await WaitUntilAcceptingAsync();
    }

    public static Task WaitUntilAcceptingAsync() =>
        Poll.UntilAsync(async () =>
        {
            try
            {
                await using var connection = OpenAdmin();
                await using var command = new MySqlCommand("select 1", connection);
                await command.ExecuteScalarAsync();
                return true;
            }
            catch (Exception e) when (e is MySqlException or TimeoutException or System.Net.Sockets.SocketException or IOException)
            {
                return false;
            }
        }, "MariaDB to accept connections", TimeSpan.FromSeconds(60));
}

/// <summary>A throwaway MariaDB user with all privileges; dropped (and its connections killed) on dispose.</summary>
internal sealed class MySqlTestUser : IDisposable
{
    public MySqlTestUser()
    {
        Name = "cv" + Guid.NewGuid().ToString("N")[..14];
        var password = "pw" + Guid.NewGuid().ToString("N")[..16];
        using (var connection = MySql.OpenAdmin())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = $"CREATE USER '{Name}'@'%' IDENTIFIED BY '{password}'; GRANT ALL PRIVILEGES ON *.* TO '{Name}'@'%';";
            command.ExecuteNonQuery();
        }
        ConnectionString = new MySqlConnectionStringBuilder(MySql.BaseConnectionString) { UserID = Name, Password = password }.ConnectionString;
    }

    public string Name { get; }
    public string ConnectionString { get; }

    public Task<List<long>> ConnectionIdsAsync() => MySql.ConnectionIdsAsync(Name);

    public Task<int> ServerConnectionsAsync() => MySql.CountAsync(Name);

    public Task WaitForCountAsync(int expected, string what) =>
        Poll.ValueAsync(ServerConnectionsAsync, n => n == expected, $"{what}: {expected} server connections of user {Name}");

    public void Dispose()
    {
        try
        {
            var ids = ConnectionIdsAsync().GetAwaiter().GetResult();
            if (ids.Count > 0)
                MySql.KillAsync(ids).GetAwaiter().GetResult();
            using var connection = MySql.OpenAdmin();
            using var command = connection.CreateCommand();
            command.CommandText = $"DROP USER IF EXISTS '{Name}'@'%'";
            command.ExecuteNonQuery();
        }
        catch (Exception e)
        {
            Console.WriteLine($"warning: cleaning up MariaDB user {Name} failed: {e.Message}");
        }
    }
}

/// <summary>A Covet data source over MySqlConnector logged in as its own user, so the server can count its connections.</summary>
internal sealed class MySqlTestPool : IDisposable
{
    private readonly bool _ownsUser;

    public MySqlTestPool(CovetPoolOptions? options = null, MySqlTestUser? user = null, string? extraConnectionString = null)
    {
        _ownsUser = user is null;
        User = user ?? new MySqlTestUser();
        ConnectionString = User.ConnectionString + (extraConnectionString is null ? "" : ";" + extraConnectionString);
        Options = options ?? TestOptions.Default();
        Options.PoolName ??= "mysql-" + User.Name;
        DataSource = CovetDataSource.Create(MySqlConnectorFactory.Instance, ConnectionString, Options);
    }

    public MySqlTestUser User { get; }
    public string ConnectionString { get; }
    public CovetPoolOptions Options { get; }
    public CovetDataSource DataSource { get; }

    public CovetPoolStatistics Stats => DataSource.GetStatistics();

    public CovetDbConnection Open()
    {
        var connection = DataSource.CreateConnection();
        connection.Open();
        return connection;
    }

    public async Task<CovetDbConnection> OpenAsync()
    {
        var connection = DataSource.CreateConnection();
        await connection.OpenAsync();
        return connection;
    }

    public Task<int> ServerConnectionsAsync() => User.ServerConnectionsAsync();

    public void Dispose()
    {
        DataSource.Dispose();
        if (_ownsUser)
            User.Dispose();
    }
}
