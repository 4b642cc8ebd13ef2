using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Configuration;

[TestClass]
public sealed class PasswordProviderTests
{
    [TestMethod]
    public async Task OpenAsync_UsesTheProvidedPasswordForEachNewPhysicalConnection()
    {
        var calls = 0;
        await using var pool = TestPool.Create(o => o.PasswordProvider = _ => ValueTask.FromResult($"token-{Interlocked.Increment(ref calls)}"),
            "Data Source=fake;Database=covet_test;Password=static");
        await using (var a = await pool.OpenAsync())
        await using (var b = await pool.OpenAsync())
        {
        }
        await using (await pool.OpenAsync())
        {
        }

        Assert.AreEqual(2, calls, "called once per physical connection, not per checkout");
        var strings = pool.OpenedPhysicals.Select(p => p.OpenedWithConnectionString!).ToList();
        Assert.IsTrue(strings.Any(s => s.Contains("token-1", StringComparison.Ordinal)));
        Assert.IsTrue(strings.Any(s => s.Contains("token-2", StringComparison.Ordinal)));
        Assert.IsTrue(strings.All(s => !s.Contains("static", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void Open_Sync_WithAnAsynchronousPasswordProvider_Works()
    {
        // Token providers (cloud IAM, vaults) are asynchronous; a sync Open must still be able to use them.
        using var pool = TestPool.Create(o => o.PasswordProvider = async ct =>
        {
            await Task.Delay(1, ct);
            return "rotated";
        });

        using var connection = pool.Source.CreateConnection();
        connection.Open();
        Assert.AreEqual(1, connection.QueryScalar("SELECT 1"));
        Assert.Contains("rotated", pool.OpenedPhysicals.Single().OpenedWithConnectionString!);
        Assert.AreEqual(1, pool.Stats.InUse);
    }

    [TestMethod]
    public async Task PasswordProviderFailure_ReleasesTheSlotAndPropagates()
    {
        await using var pool = TestPool.Create(o =>
        {
            o.MaxPoolSize = 1;
            o.PasswordProvider = _ => throw new InvalidOperationException("vault unavailable");
        });
        await using var connection = pool.Source.CreateConnection();
        var e = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => connection.OpenAsync());
        Assert.AreEqual("vault unavailable", e.Message);
        Assert.AreEqual(0, pool.Stats.Total);
    }
}
