using Covet.Data.AspNetCore.Pools;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;

namespace Covet.Data.AspNetCore.Tests;

/// <summary>The test application in memory, with the dashboard options, pool source and clock a test chooses.</summary>
internal sealed class DashboardFactory(Action<CovetDashboardOptions>? options = null, IDashboardPools? pools = null, Action<IServiceCollection>? services = null)
    : WebApplicationFactory<TestProgram>
{
    // The application is the test assembly itself: its content root is the output folder (no project folder to guess).
    protected override IHost CreateHost(IHostBuilder builder)
    {
        builder.UseContentRoot(AppContext.BaseDirectory);
        return base.CreateHost(builder);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        builder.ConfigureTestServices(s =>
        {
            s.AddSingleton<IStartupFilter, RemoteAddressStartupFilter>();
            if (options is not null)
                s.Configure(options);
            if (pools is not null)
                s.AddSingleton(pools);
            services?.Invoke(s);
        });
    }
}
