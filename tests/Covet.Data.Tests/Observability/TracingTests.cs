using System.Collections.Concurrent;
using System.Diagnostics;
using Covet.Data.Diagnostics;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Observability;

[TestClass]
public sealed class TracingTests
{
    [TestMethod]
    public async Task Acquire_SpansOnlyCheckoutsThatCreateOrWait_NeverTheFastPath()
    {
        var name = $"trace-{Guid.NewGuid():N}";
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == CovetMetrics.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (Equals(activity.GetTagItem(CovetMetrics.PoolNameTag), name))
                    spans.Enqueue(activity);
            },
        };
        ActivitySource.AddActivityListener(listener);
        await using var pool = TestPool.Create(o => { o.PoolName = name; o.MaxPoolSize = 1; });

        var first = await pool.OpenAsync();                   // opens a physical connection: a span
        Assert.AreEqual("create", spans.Single().GetTagItem("covet.acquire.path"));

        var waiting = pool.OpenAsync();                        // must wait for the first: a span
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "a caller waiting");
        await first.DisposeAsync();
        await (await waiting).DisposeAsync();
        Assert.AreEqual(2, spans.Count);
        Assert.AreEqual("wait", spans.Last().GetTagItem("covet.acquire.path"));

        await pool.UntilQuiescentAsync();
        await (await pool.OpenAsync()).DisposeAsync();         // idle connection: the fast path stays span-free
        Assert.AreEqual(2, spans.Count);
    }
}
