using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Covet.Data.AspNetCore.Tests;

/// <summary>An HttpClient over the in-memory dashboard, with the test's identity and remote-address headers.</summary>
internal sealed partial class DashboardClient(HttpClient http)
{
    public HttpClient Http { get; } = http;

    public static DashboardClient Admin(DashboardFactory factory) => new(factory.CreateClient()) { User = "alice", Role = "admin" };

    public string? User { get; init; }
    public string? Role { get; init; }
    public string? RemoteIp { get; init; }

    public async Task<(HttpStatusCode Status, string Body)> GetAsync(string path)
    {
        using var response = await Http.SendAsync(Request(HttpMethod.Get, path));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        var (status, body) = await GetAsync(path);
        Assert.AreEqual(HttpStatusCode.OK, status, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public async Task<(HttpStatusCode Status, string Body)> PostAsync(string path, string? token = null, string? body = null, string? origin = null)
    {
        var request = Request(HttpMethod.Post, path);
        if (token is not null)
            request.Headers.Add("X-Covet-Dashboard-Token", token);
        if (origin is not null)
            request.Headers.Add("Origin", origin);
        if (body is not null)
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The anti-forgery token the page gives this user ("" when the page shows no actions).</summary>
    public async Task<string> PageTokenAsync()
    {
        var (status, html) = await GetAsync("/covet");
        Assert.AreEqual(HttpStatusCode.OK, status);
        return WebUtility.HtmlDecode(TokenMeta().Match(html).Groups[1].Value);
    }

    private HttpRequestMessage Request(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        if (User is not null)
            request.Headers.Add("X-Test-User", User);
        if (Role is not null)
            request.Headers.Add("X-Test-Role", Role);
        if (RemoteIp is not null)
            request.Headers.Add("X-Test-Remote-Ip", RemoteIp);
        return request;
    }

    [GeneratedRegex("<meta name=\"covet-token\" content=\"([^\"]*)\">")]
    private static partial Regex TokenMeta();
}
