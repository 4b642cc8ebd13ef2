using System.Text.RegularExpressions;
using Covet.Data.AspNetCore.Pools;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Covet.Data.AspNetCore.Tests;

/// <summary>
/// The page in a real browser: Debian's chromium (installed by scripts/servers.sh), driven by Playwright, against the
/// application on Kestrel at 127.0.0.1 on a random port. Time here is real (the page polls once a second), so every wait
/// is for a condition, bounded by a timeout, never a fixed sleep.
/// </summary>
[TestClass]
public sealed class DashboardBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly string[] ChromiumArgs =
        ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task ThePage_ShowsPoolsAndTheLeakersStackTrace_UpdatesItsChart_AndActsOnThePool()
    {
        if (!File.Exists(Chromium))
            Assert.Fail($"{Chromium} is missing: scripts/servers.sh start installs it (apt-get install chromium).");
        await using var pool = new SqlitePool("browser orders", maxPoolSize: 6);
        pool.WarmIdle(3);
        pool.OpenAndLeak();
        var source = new LiveOperationsDouble();
        await using var app = TestProgram.Build(["--urls", "http://127.0.0.1:0"], services =>
        {
            services.Configure<CovetDashboardOptions>(o => o.ActionsPolicy = TestProgram.AnyonePolicy);
            services.AddSingleton<IDashboardPools>(source);
        });
        await app.StartAsync(TestContext.CancellationToken);
        var baseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        StringAssert.StartsWith(baseUrl, "http://127.0.0.1:");

        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Args = ChromiumArgs, Headless = true });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        page.PageError += (_, e) => errors.Add(e);
        page.Dialog += (_, d) => d.AcceptAsync();   // Clear asks for confirmation

        await page.GotoAsync(baseUrl + "/covet");

        // The pool is listed, with its counts; selecting it shows its detail.
        var row = page.Locator("#pools tbody tr", new() { HasText = pool.Name });
        await Expect(row).ToBeVisibleAsync();
        await row.ClickAsync();
        await Expect(page.Locator("#detail-name")).ToHaveTextAsync(pool.Name);
        await Expect(row.Locator("td").Nth(3)).ToHaveTextAsync("1");   // in use: the leak
        await Expect(row.Locator("td").Nth(4)).ToHaveTextAsync("2");   // idle
        await Expect(page.Locator("#mode")).ToHaveTextAsync("actions enabled");

        // The leaked connection's holder, with the stack trace of the code that opened it, unfolded.
        var trace = page.Locator("#holders pre.trace").First;
        await Expect(trace).ToBeVisibleAsync();
        await Expect(trace).ToContainTextAsync("SqlitePool.OpenAndLeak");
        await Expect(trace).ToContainTextAsync(nameof(ThePage_ShowsPoolsAndTheLeakersStackTrace_UpdatesItsChart_AndActsOnThePool));

        // The chart updates: a further sample appears (the sampler takes one a second, the page polls once a second).
        var chart = page.Locator("#chart-connections");
        await Expect(chart).ToHaveAttributeAsync("data-samples", new Regex("^[1-9]"));
        var before = int.Parse((await chart.GetAttributeAsync("data-samples"))!);
        await page.WaitForFunctionAsync($"() => Number(document.querySelector('#chart-connections').dataset.samples) > {before}");
        Assert.IsTrue(await page.Locator("#chart-connections polyline").CountAsync() >= 3, "in use, idle, waiting and max are drawn");

        // Clear from the page: the real pool closes its idle connections.
        var destroyedBefore = pool.DataSource.GetStatistics().ConnectionsDestroyed;
        await page.Locator("#actions button[data-action=clear]").ClickAsync();
        await Expect(page.Locator("#message")).ToHaveTextAsync("Pool cleared.");
        await Expect(row.Locator("td").Nth(4)).ToHaveTextAsync("0");
        var stats = pool.DataSource.GetStatistics();
        Assert.AreEqual(0, stats.Idle);
        Assert.AreEqual(destroyedBefore + 2, stats.ConnectionsDestroyed);

        // Pause from the page, through the dashboard's pool source (the core's PauseAsync is not there yet): the state changes.
        await page.Locator("#actions button[data-action=pause]").ClickAsync();
        await Expect(page.Locator("#detail-state")).ToHaveTextAsync("Paused");
        await Expect(row.Locator("td").Nth(1)).ToHaveTextAsync("Paused");
        CollectionAssert.Contains(source.Calls.ToArray(), $"pause {pool.Id}");
        await page.Locator("#actions button[data-action=resume]").ClickAsync();
        await Expect(page.Locator("#detail-state")).ToHaveTextAsync("Running");

        // Resize from the page: the real pool's maximum changes and the table shows it; a refused size shows the pool's reason.
        await page.Locator("#resize-max").FillAsync("8");
        await page.Locator("#actions button[data-action=resize]").ClickAsync();
        await Expect(page.Locator("#message")).ToHaveTextAsync("Pool resized to 0..8.");
        await Expect(row.Locator("td").Nth(6)).ToHaveTextAsync("8");
        Assert.AreEqual(8, pool.DataSource.GetStatistics().MaxPoolSize);
        await page.Locator("#resize-min").FillAsync("9");
        await page.Locator("#actions button[data-action=resize]").ClickAsync();
        await Expect(page.Locator("#message")).ToContainTextAsync("MinPoolSize (9) must not exceed MaxPoolSize (8)");
        await Expect(page.Locator("#message")).ToContainTextAsync("HTTP 400");
        Assert.AreEqual(8, pool.DataSource.GetStatistics().MaxPoolSize);

        var screenshot = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), "dashboard.png");
        await page.ScreenshotAsync(new() { Path = screenshot, FullPage = true });
        TestContext.AddResultFile(screenshot);
        TestContext.WriteLine($"screenshot: {screenshot}");
        // The browser reports the refused resize's 400 itself ("Failed to load resource: ... status of 400"): expected, the only one.
        Assert.AreEqual("", string.Join("\n", errors.Where(e => !e.Contains("status of 400", StringComparison.Ordinal))), "the page logged errors");

        await app.StopAsync(TestContext.CancellationToken);
    }
}
