using System.Data.Common;
using Dapper;

namespace Covet.Data.Benchmarks.Infrastructure;

/// <summary>The measured operations, written once against <see cref="DbDataSource"/> so every pool runs the same code.</summary>
public static class Workload
{
    public const string SelectOneSql = "select 1";

    /// <summary>Open → close (async).</summary>
    public static async Task OpenCloseAsync(DbDataSource source)
    {
        await using var connection = source.CreateConnection();
        await connection.OpenAsync();
    }

    /// <summary>Open → close (sync).</summary>
    public static void OpenClose(DbDataSource source)
    {
        using var connection = source.CreateConnection();
        connection.Open();
    }

    /// <summary>Open → Dapper <c>ExecuteScalarAsync&lt;int&gt;("select 1")</c> → close.</summary>
    public static async Task<int> SelectOneAsync(DbDataSource source)
    {
        await using var connection = source.CreateConnection();
        await connection.OpenAsync();
        return await connection.ExecuteScalarAsync<int>(SelectOneSql);
    }

    /// <summary>
    /// <paramref name="workers"/> concurrent async loops of <see cref="SelectOneAsync"/> sharing <paramref name="operations"/>
    /// operations in total. Throws if any operation returned something other than 1.
    /// </summary>
    public static async Task RunWorkersAsync(DbDataSource source, int workers, int operations)
    {
        var remaining = new Counter(operations);
        var tasks = new Task[workers];
        for (var i = 0; i < workers; i++)
        {
            tasks[i] = Task.Run(async () =>
            {
                while (Interlocked.Decrement(ref remaining.Value) >= 0)
                {
                    if (await SelectOneAsync(source) != 1)
                        throw new InvalidOperationException("select 1 did not return 1");
                }
            });
        }
        await Task.WhenAll(tasks);
    }

    /// <summary><paramref name="callers"/> concurrent callers, each doing one <see cref="SelectOneAsync"/>, all started at once.</summary>
    public static async Task BurstAsync(DbDataSource source, int callers)
    {
        var tasks = new Task<int>[callers];
        for (var i = 0; i < callers; i++)
            tasks[i] = Task.Run(() => SelectOneAsync(source));
        var results = await Task.WhenAll(tasks);
        foreach (var result in results)
        {
            if (result != 1)
                throw new InvalidOperationException("select 1 did not return 1");
        }
    }

    private sealed class Counter(int value)
    {
        public int Value = value;
    }
}
