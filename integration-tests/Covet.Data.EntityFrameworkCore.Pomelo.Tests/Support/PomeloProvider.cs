using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using MySqlConnector;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>The Pomelo test project's provider: Pomelo.EntityFrameworkCore.MySql 9 over MySqlConnector, on EF Core 9.</summary>
internal abstract partial class EfProvider
{
    public static partial EfProvider Create(ProviderKind kind, string label) => kind switch
    {
        ProviderKind.PomeloMySql => new PomeloProvider(label),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a provider of the Pomelo test project"),
    };

    private sealed class PomeloProvider : EfProvider
    {
        // Detected once, from the server (MariaDB 10.11 here), as an application would configure it.
        private static readonly Lazy<ServerVersion> Server = new(() => ServerVersion.AutoDetect(MySqlServer.AdminConnectionString()));

        public PomeloProvider(string label) : base(label) =>
            ConnectionString = new MySqlConnectionStringBuilder(MySqlServer.BaseConnectionString) { Database = DatabaseName }.ConnectionString;

        public override ProviderKind Kind => ProviderKind.PomeloMySql;
        public override string ConnectionString { get; }
        public override string Q(string identifier) => $"`{identifier}`";
        public override string SleepSql(double seconds) => $"select sleep({seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})";

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, bool retryOnFailure = false) =>
            builder.UseMySql(ConnectionString, Server.Value, o =>
            {
                // MySqlConnector reports a connection killed mid-command as MySqlException Number 0 (end of stream) with
                // IsTransient false, so an app on Pomelo adds 0 for the strategy to retry it (the same with or without Covet).
                if (retryOnFailure)
                    o.EnableRetryOnFailure(5, TimeSpan.FromMilliseconds(200), [0]);
            });

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, DbConnection connection) =>
            builder.UseMySql(connection, Server.Value);

        public override DbConnection CreateProviderConnection() => new MySqlConnection(ConnectionString);

        public override async Task<object> SessionIdAsync(DbContext context) =>
            await context.Database.SqlQueryRaw<long>("select connection_id() as Value").SingleAsync();

        public override async Task<int?> ServerConnectionsAsync() => (await MySqlServer.SessionIdsAsync(DatabaseName)).Count;

        public override async Task KillAllSessionsAsync() => await MySqlServer.KillAsync(await MySqlServer.SessionIdsAsync(DatabaseName));

        public override async Task KillSessionAsync(DbContext context) => await MySqlServer.KillAsync([(long)await SessionIdAsync(context)]);

        public override async ValueTask DisposeAsync()
        {
            CovetPools.Clear(DatabaseName);
            MySqlConnection.ClearAllPools();
            await MySqlServer.DropDatabaseAsync(DatabaseName);
        }
    }
}
