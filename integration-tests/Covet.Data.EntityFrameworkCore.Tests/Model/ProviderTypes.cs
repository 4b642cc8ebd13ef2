using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Covet.Data.EntityFrameworkCore.Tests.Model;

// ---- PostgreSQL: arrays, jsonb, enums ----

public class PgDocument
{
    public int Id { get; set; }
    public int[] Scores { get; set; } = [];
    public List<string> Tags { get; set; } = [];
    public JsonDocument Payload { get; set; } = JsonDocument.Parse("{}");
}

public class PgTypesContext(DbContextOptions<PgTypesContext> options) : DbContext(options)
{
    public DbSet<PgDocument> Documents => Set<PgDocument>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<PgDocument>().Property(d => d.Payload).HasColumnType("jsonb");
}

public enum Mood
{
    Sad,
    Ok,
    Happy,
}

public class PgPerson
{
    public int Id { get; set; }
    public Mood Mood { get; set; }
}

/// <summary>A PostgreSQL enum: mapped with <c>MapEnum</c> in UseNpgsql's options, which EF Npgsql 9+ configures on an NpgsqlDataSource.</summary>
public class PgEnumContext(DbContextOptions<PgEnumContext> options) : DbContext(options)
{
    public DbSet<PgPerson> People => Set<PgPerson>();
}

// ---- MySQL / MariaDB: json ----

public class MySqlDocument
{
    public int Id { get; set; }
    public string Payload { get; set; } = "{}";
}

public class MySqlTypesContext(DbContextOptions<MySqlTypesContext> options) : DbContext(options)
{
    public DbSet<MySqlDocument> Documents => Set<MySqlDocument>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<MySqlDocument>().Property(d => d.Payload).HasColumnType("json");
}

// ---- SQLite: decimal (EF's ef_* functions and EF_DECIMAL collation), regexp ----

public class SqliteProduct
{
    public int Id { get; set; }
    public string Name { get; set; } = "";
    public decimal Price { get; set; }
}

public class SqliteTypesContext(DbContextOptions<SqliteTypesContext> options) : DbContext(options)
{
    public DbSet<SqliteProduct> Products => Set<SqliteProduct>();
}
