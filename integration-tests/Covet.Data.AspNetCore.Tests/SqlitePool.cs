using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace Covet.Data.AspNetCore.Tests;

/// <summary>A real Covet pool over a fresh SQLite file, with a name no other test uses.</summary>
internal sealed class SqlitePool : IAsyncDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"covet-dashboard-test-{Guid.NewGuid():N}.db");
    private readonly List<DbConnection> _held = [];

    public SqlitePool(string name, int maxPoolSize = 5)
    {
        Name = $"{name} {Guid.NewGuid():N}"[..(name.Length + 9)];
        DataSource = CovetDataSource.Create(SqliteFactory.Instance, $"Data Source={_file}", new CovetPoolOptions
        {
            PoolName = Name,
            MaxPoolSize = maxPoolSize,
            LeakStackTraces = CovetLeakStackTraces.Always,   // every holder has its stack trace, deterministically
            AutoScale = false,                               // no idle connection retired behind a test's back
        });
    }

    public string Name { get; }
    public CovetDataSource DataSource { get; }
    public long Id => DataSource.GetStatistics().PoolId;

    /// <summary>Opens and closes <paramref name="count"/> connections at once, so that many are idle afterwards.</summary>
    public void WarmIdle(int count)
    {
        var connections = Enumerable.Range(0, count).Select(_ => DataSource.OpenConnection()).ToList();
        foreach (var c in connections)
            c.Dispose();
    }

    /// <summary>Borrows a connection and keeps it: the holder whose stack trace the dashboard must show.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public DbConnection OpenAndLeak()
    {
        var connection = DataSource.OpenConnection();
        _held.Add(connection);
        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _held)
            await c.DisposeAsync();
        await DataSource.DisposeAsync();
        SqliteConnection.ClearAllPools();
        File.Delete(_file);
    }
}
